import { Controller, Get, Headers, Inject, Logger, Param, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiParam, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { EventStreamHub } from '../jobs/event-stream-hub.js';
import { EVENT_ID_PATTERN, parseEventId } from '../jobs/ids.js';
import { JobStore } from '../jobs/job-store.js';
import { JobService } from '../jobs/job.service.js';
import type { JobEvent } from '../jobs/job-types.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { eventsQuerySchema } from '../jobs/job-request.schema.js';
import { ERROR_SCHEMA, EVENT_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';
import { StreamLimits } from '../jobs/stream-limits.js';
import { streamJobEvents } from '../jobs/sse-stream.js';
import { validate } from '../errors/validation.js';

@ApiTags('jobs')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:read')
@Controller('v1/jobs')
export class JobEventsController {
  constructor(
    private readonly jobs: JobService,
    private readonly store: JobStore,
    private readonly hub: EventStreamHub,
    private readonly limits: StreamLimits,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  private readonly logger = new Logger(JobEventsController.name);

  @Get(':id/events')
  @ApiOperation({
    summary:
      "A job's events: Server-Sent Events replaying the log from the start " +
      '(or after Last-Event-ID), then live until the terminal state event.',
    description:
      'Each event has `id:`, `event:` (state | progress | step | log | warning | result) and JSON `data:` (with `at`, ' +
      "epoch ms). A build has `step` events (its steps' state changes) and `warning` events (BuildKit's own " +
      'warnings, e.g. Dockerfile lint checks: `{rule?, message, detail?, url?, line?, step_id?}`, at most 100). ' +
      'Idle streams get `: heartbeat` comments. `?follow=false` answers the log so far as JSON.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({ name: 'follow', required: false, enum: ['true', 'false'] })
  @ApiHeader({
    name: 'Last-Event-ID',
    required: false,
    description: 'Resume after this event id.',
    schema: { type: 'string', pattern: EVENT_ID_PATTERN },
  })
  @ApiProduces('text/event-stream', 'application/json')
  @ApiResponse({
    status: 200,
    description: 'text/event-stream, or with follow=false `{items: [event]}`.',
    schema: { type: 'object', properties: { items: { type: 'array', items: EVENT_SCHEMA } } },
  })
  @ApiResponse({ status: 400, description: 'Invalid query or Last-Event-ID.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such job (also any id that is not a uuid).', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 429,
    description: 'TOO_MANY_STREAMS: the API key or its tenant holds STEVEDORE_STREAMS_PER_KEY / _PER_TENANT live streams already.',
    schema: ERROR_SCHEMA,
  })
  async events(
    @Param('id') id: string,
    @Query() query: unknown,
    @Headers('last-event-id') lastEventIdHeader: string | undefined,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ): Promise<void> {
    const { follow } = validate(eventsQuerySchema, query, 'query');
    const lastEventId = lastEventIdHeader === undefined ? undefined : parseEventId(lastEventIdHeader);
    if (lastEventIdHeader !== undefined && !lastEventId) {
      throw new AppError(
        'invalid',
        'VALIDATION_FAILED',
        'invalid header: Last-Event-ID: must be an event id like 1700000000000-0 (two unsigned 64-bit numbers)',
        { fields: [{ path: 'Last-Event-ID', message: 'must be an event id' }] },
      );
    }
    await this.jobs.get(id, principal.tenant);
    if (follow === 'false') {
      const items: JobEvent[] = [];
      for (
        let page = await this.store.readEvents(id, lastEventId);
        page.length;
        page = await this.store.readEvents(id, items[items.length - 1]!.id)
      )
        items.push(...page);
      await reply.send({ items });
      return;
    }
    const release = this.limits.acquire(principal);
    await streamJobEvents({ request, reply }, id, {
      hub: this.hub,
      store: this.store,
      after: lastEventId,
      heartbeatMs: this.config.sseHeartbeatMs,
      onError: (err) => this.logger.error(`event stream of job ${id} failed: ${(err as Error)?.stack ?? String(err)}`),
      release,
    });
  }
}
