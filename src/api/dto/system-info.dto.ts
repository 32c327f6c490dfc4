import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ToolVersionsDto {
  @ApiPropertyOptional({ example: 'v0.32.2' }) buildctl?: string;
  @ApiPropertyOptional({ example: '0.74.0' }) trivy?: string;
  @ApiPropertyOptional({ example: 'v3.1.2' }) cosign?: string;
}

export class SystemInfoDto {
  @ApiProperty({ example: '0.1.0' }) version!: string;
  @ApiProperty({ example: 'v24.21.0' }) node!: string;
  @ApiProperty({ type: ToolVersionsDto }) tools!: ToolVersionsDto;
}

export class ErrorDetailDto {
  @ApiProperty({ example: 'UNAUTHORIZED' }) code!: string;
  @ApiProperty({ example: 'missing bearer token: send Authorization: Bearer <token>' }) message!: string;
  @ApiProperty({ type: 'object', additionalProperties: true }) details!: Record<string, unknown>;
}

/** The one error shape of every 4xx/5xx answer. */
export class ErrorResponseDto {
  @ApiProperty({ type: ErrorDetailDto }) error!: ErrorDetailDto;
}
