import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AdminTokenGuard } from './auth/admin-token.guard.js';
import { ErrorResponseDto, SystemInfoDto } from './dto/system-info.dto.js';
import { SystemService } from './system.service.js';

@ApiTags('system')
@ApiBearerAuth()
@UseGuards(AdminTokenGuard)
@Controller('v1/system')
export class SystemController {
  constructor(private readonly system: SystemService) {}

  @Get()
  @ApiOperation({ summary: 'Version of stevedore and of the tools it runs (buildctl, trivy, cosign).' })
  @ApiOkResponse({ type: SystemInfoDto })
  @ApiUnauthorizedResponse({ type: ErrorResponseDto, description: 'Missing or wrong bearer token.' })
  info(): Promise<SystemInfoDto> {
    return this.system.info();
  }
}
