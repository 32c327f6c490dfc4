import { Controller, Get, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { AuthGuard } from '../auth/auth.guard.js';
import { RequireScope } from '../auth/principal.js';
import { ErrorResponseDto, SystemInfoDto } from './dto/system-info.dto.js';
import { SystemService } from '../engines/versions/system.service.js';

@ApiTags('system')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:read')
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
