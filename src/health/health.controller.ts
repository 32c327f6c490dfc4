import { Controller, Get } from '@nestjs/common';
import { ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ReadinessIndicators } from './readiness-indicators.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';

/** terminus's result: each check by name (redis, buildkit, registry) with its status. */
const CHECKS = {
  type: 'object',
  additionalProperties: { type: 'object', required: ['status'], properties: { status: { type: 'string' } }, additionalProperties: true },
};
const READY_SCHEMA = {
  type: 'object',
  required: ['status'],
  properties: {
    status: { type: 'string', enum: ['ok'] },
    info: { ...CHECKS, nullable: true },
    error: { ...CHECKS, nullable: true },
    details: CHECKS,
  },
};

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
  // Documented here rather than by terminus: a 503 goes through ApiExceptionFilter,
  // which wraps terminus's result in the usual error shape.
  @HealthCheck({ noCache: true, swaggerDocumentation: false })
  @ApiOperation({ summary: 'Readiness: Redis, BuildKit and the registry are reachable.' })
  @ApiResponse({ status: 200, description: 'Ready.', schema: READY_SCHEMA })
  @ApiResponse({
    status: 503,
    description: 'Not ready (code NOT_READY); `error.details.error` names each failing part (redis, buildkit, registry).',
    schema: ERROR_SCHEMA,
  })
  readyz() {
    return this.health.check([
      () => this.indicators.checkRedis(),
      () => this.indicators.checkBuildkit(),
      () => this.indicators.checkRegistry(),
    ]);
  }
}
