import { Controller, Get, HttpCode, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { JobService } from '../jobs/job.service.js';
import { isTerminal } from '../jobs/job-types.js';
import { DeliveryLog } from '../webhooks/delivery-log.js';
import { WebhookDispatcher } from '../webhooks/webhook-dispatcher.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';

const ATTEMPT_SCHEMA = {
  type: 'object',
  required: ['attempt', 'webhook_id', 'type', 'status_code', 'duration_ms', 'error', 'at'],
  properties: {
    attempt: { type: 'integer' },
    webhook_id: { type: 'string' },
    type: { type: 'string', enum: ['job.succeeded', 'job.failed', 'job.cancelled', 'job.timed_out'] },
    status_code: { type: 'integer', nullable: true },
    duration_ms: { type: 'integer' },
    error: { type: 'string', nullable: true },
    response_excerpt: { type: 'string', nullable: true },
    at: { type: 'string', format: 'date-time' },
  },
};

/** A job's webhook deliveries: every attempt, and a way to send the event again. */
@ApiTags('webhooks')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('v1/jobs')
export class JobDeliveriesController {
  constructor(
    private readonly jobs: JobService,
    private readonly log: DeliveryLog,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  @Get(':id/deliveries')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "Every delivery attempt of the job's webhook, oldest first." })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({
    status: 200,
    schema: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: ATTEMPT_SCHEMA } } },
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:read.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such job.', schema: ERROR_SCHEMA })
  async list(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    await this.jobs.get(id, principal.tenant);
    return { items: await this.log.list(id) };
  }

  @Post(':id/deliveries/redeliver')
  @RequireScope('jobs:write')
  @HttpCode(202)
  @ApiOperation({ summary: "Send the finished job's webhook again (same webhook-id; retried like the first)." })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 202, schema: { type: 'object', required: ['webhook_id'], properties: { webhook_id: { type: 'string' } } } })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:write.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such job.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 409, description: 'NO_CALLBACK (the job has no callback_url) or JOB_NOT_FINISHED.', schema: ERROR_SCHEMA })
  async redeliver(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    const job = await this.jobs.get(id, principal.tenant);
    if (!job.request.callback_url) throw new AppError('failed_precondition', 'NO_CALLBACK', `job ${id} has no callback_url`);
    if (!isTerminal(job.state))
      throw new AppError('failed_precondition', 'JOB_NOT_FINISHED', `job ${id} is ${job.state}; its webhook is sent when it ends`);
    return { webhook_id: await this.dispatcher.redeliver(job) };
  }
}
