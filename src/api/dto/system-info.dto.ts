import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class ToolVersionsDto {
  @ApiPropertyOptional({ example: 'v0.32.2' }) buildctl?: string;
  @ApiPropertyOptional({ example: '0.74.0' }) trivy?: string;
  @ApiPropertyOptional({ example: 'v3.1.2' }) cosign?: string;
}

export class TrivyDbUpdateDto {
  @ApiProperty({ example: '2026-12-03T08:00:00.000Z' }) at!: string;
  @ApiProperty({ enum: ['updated', 'kept', 'unreachable', 'failed'] }) result!: string;
  @ApiProperty({ example: 'no answer from mirror.gcr.io, ghcr.io within a few seconds' }) message!: string;
}

/** The Trivy DB of this process's cache dir (README: Trivy DB). */
export class TrivyDbStateDto {
  @ApiProperty({
    enum: ['auto', 'true', 'false', 'server'],
    description: 'STEVEDORE_TRIVY_DB_UPDATE; `server`: scans run on TRIVY_SERVER_URL, which keeps its own DB.',
  })
  mode!: string;
  @ApiProperty({ description: 'Whether a DB Trivy can use is there.' }) present!: boolean;
  @ApiProperty({ example: '/var/lib/stevedore/trivy/db' }) path!: string;
  @ApiProperty({ type: String, nullable: true, example: '2026-12-03T06:12:44Z' }) updated_at!: string | null;
  @ApiProperty({ type: String, nullable: true }) next_update!: string | null;
  @ApiProperty({ type: String, nullable: true }) downloaded_at!: string | null;
  @ApiProperty({ type: Number, nullable: true, example: 2 }) schema_version!: number | null;
  @ApiProperty({ type: Number, nullable: true }) size_bytes!: number | null;
  @ApiProperty({
    type: String,
    nullable: true,
    enum: ['downloaded', 'uploaded', 'found'],
    description: 'downloaded by `auto`, loaded through PUT /v1/system/trivy-db, or found in the cache dir.',
  })
  source!: string | null;
  @ApiProperty({ type: [String], example: ['mirror.gcr.io/aquasec/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2'] })
  repositories!: string[];
  @ApiProperty({ type: TrivyDbUpdateDto, nullable: true, description: "This process's last update attempt." })
  last_update!: TrivyDbUpdateDto | null;
  @ApiPropertyOptional({ description: 'Why a DB that is there cannot be used (e.g. another schema version).' }) problem?: string;
  @ApiPropertyOptional({ description: 'With no usable DB: how to provide one.' }) hint?: string;
}

export class SystemInfoDto {
  @ApiProperty({ example: '0.1.0' }) version!: string;
  @ApiProperty({ example: 'v24.21.0' }) node!: string;
  @ApiProperty({ type: ToolVersionsDto }) tools!: ToolVersionsDto;
  @ApiProperty({ type: TrivyDbStateDto }) trivy_db!: TrivyDbStateDto;
}

/** PUT /v1/system/trivy-db's answer. */
export class TrivyDbLoadedDto {
  @ApiProperty({ example: '2026-12-03T06:12:44Z', description: "metadata.json's UpdatedAt." }) updated_at!: string;
  @ApiProperty({ example: 2, description: 'DB schema version.' }) version!: number;
  @ApiProperty({ example: 714145792, description: 'Size of trivy.db.' }) size_bytes!: number;
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
