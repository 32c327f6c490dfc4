import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ReadinessIndicators } from './readiness.indicators.js';

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: ReadinessIndicators,
  ) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process answers.' })
  @ApiResponse({ status: 200, description: 'Alive.', schema: { example: { status: 'ok' } } })
  healthz() {
    return { status: 'ok' };
  }

  @Get('readyz')
  @HealthCheck()
  @ApiOperation({ summary: 'Readiness: Redis, BuildKit and the registry are reachable.' })
  @ApiResponse({ status: 503, description: 'Not ready; `error.details.error` names each failing part (redis, buildkit, registry).' })
  readyz() {
    return this.health.check([
      () => this.indicators.checkRedis(),
      () => this.indicators.checkBuildkit(),
      () => this.indicators.checkRegistry(),
    ]);
  }
}
