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
    status: { type: 'string', enum: ['ok', 'degraded'] },
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
  @ApiOperation({
    summary: 'Readiness: Redis, BuildKit and the registry are reachable; the event loop keeps up.',
  })
  @ApiResponse({
    status: 200,
    description:
      'Ready. `status: "degraded"` (still 200) while the event loop delay p99 has stayed above ' +
      'STEVEDORE_EVENT_LOOP_DEGRADED_MS for STEVEDORE_EVENT_LOOP_DEGRADED_WINDOW_SECONDS (`details.event_loop`).',
    schema: READY_SCHEMA,
  })
  @ApiResponse({
    status: 503,
    description: 'Not ready (code NOT_READY); `error.details.error` names each failing part (redis, buildkit, registry).',
    schema: ERROR_SCHEMA,
  })
  async readyz() {
    const result = await this.health.check([
      () => this.indicators.checkRedis(),
      () => this.indicators.checkBuildkit(),
      () => this.indicators.checkRegistry(),
      () => this.indicators.checkEventLoop(),
    ]);
    // Degraded is a 200, not a 503. A slow loop is this process being busy, not broken: it
    // still answers, only later. Taking it out of a load balancer hands its traffic to the
    // other instances, which then slow down in turn and are taken out too, until none is
    // left; and with one instance (serve), a 503 turns a slow service into no service. A 503
    // stays for what this instance cannot do at all (Redis, BuildKit or the registry gone).
    // The status (and stevedore_event_loop_delay_seconds) is for alerting and dashboards.
    return result.details.event_loop?.degraded === true ? { ...result, status: 'degraded' as const } : result;
  }
}
