import { Controller, Get, Headers, Inject, Logger, Param, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiParam, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { EventStreamHub } from '../jobs/event-stream-hub.js';
import { EVENT_ID_PATTERN, parseEventId } from '../jobs/ids.js';
import { followJobEvents } from '../jobs/job-events.js';
import { JobStore } from '../jobs/job-store.js';
import { JobService } from '../jobs/job.service.js';
import type { JobEvent } from '../jobs/job-types.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { eventsQuerySchema } from '../jobs/job-request.schema.js';
import { ERROR_SCHEMA, EVENT_SCHEMA } from '../openapi/openapi-schemas.js';
import { ApiError } from '../errors/api-error.js';
import { mapJobErrors } from '../errors/job-errors.js';
import { StreamLimits } from '../jobs/stream-limits.js';
import { validate } from '../errors/validation.js';

/** What a broken live stream tells the client: never Redis's own words (they are the log's). */
export const STREAM_FAILED = { code: 'STREAM_FAILED', message: 'the event stream failed; reconnect with Last-Event-ID to resume' };

/** One SSE frame: `id:`, `event:` (the type) and the event's JSON on `data:`. */
export const sseFrame = (e: JobEvent) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ at: e.at, ...e.data })}\n\n`;

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
    summary: "A job's events: Server-Sent Events replaying the log from the start (or after Last-Event-ID), then live until the terminal state event.",
    description: 'Each event has `id:`, `event:` (state | progress | log | result) and JSON `data:` (with `at`, epoch ms). Idle streams get `: heartbeat` comments. `?follow=false` answers the log so far as JSON.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({ name: 'follow', required: false, enum: ['true', 'false'] })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event id.', schema: { type: 'string', pattern: EVENT_ID_PATTERN } })
  @ApiProduces('text/event-stream', 'application/json')
  @ApiResponse({ status: 200, description: 'text/event-stream, or with follow=false `{items: [event]}`.', schema: { type: 'object', properties: { items: { type: 'array', items: EVENT_SCHEMA } } } })
  @ApiResponse({ status: 400, description: 'Invalid query or Last-Event-ID.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such job (also any id that is not a uuid).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 429, description: 'TOO_MANY_STREAMS: the API key or its tenant holds STEVEDORE_STREAMS_PER_KEY / _PER_TENANT live streams already.', schema: ERROR_SCHEMA })
  async events(@Param('id') id: string, @Query() query: unknown, @Headers('last-event-id') lastEventIdHeader: string | undefined, @Req() request: FastifyRequest, @Res() reply: FastifyReply, @CurrentPrincipal() principal: Principal): Promise<void> {
    const { follow } = validate(eventsQuerySchema, query, 'query');
    const lastEventId = lastEventIdHeader === undefined ? undefined : parseEventId(lastEventIdHeader);
    if (lastEventIdHeader !== undefined && !lastEventId) {
      throw new ApiError(400, 'VALIDATION_FAILED', 'invalid header: Last-Event-ID: must be an event id like 1700000000000-0 (two unsigned 64-bit numbers)', { fields: [{ path: 'Last-Event-ID', message: 'must be an event id' }] });
    }
    await mapJobErrors(this.jobs.get(id, principal.tenant));
    if (follow === 'false') {
      const items: JobEvent[] = [];
      for (let page = await this.store.readEvents(id, lastEventId); page.length; page = await this.store.readEvents(id, items[items.length - 1]!.id)) items.push(...page);
      await reply.send({ items });
      return;
    }
    const release = this.limits.acquire(principal);
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': String(request.id) });
    raw.write(': stream open\n\n');
    const abort = new AbortController();
    request.raw.on('close', () => abort.abort());
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), this.config.sseHeartbeatMs);
    try {
      for await (const event of followJobEvents(this.hub, this.store, id, lastEventId, abort.signal)) raw.write(sseFrame(event));
    } catch (err) {
      this.logger.error(`event stream of job ${id} failed: ${(err as Error)?.stack ?? String(err)}`);
      raw.write(`event: error\ndata: ${JSON.stringify(STREAM_FAILED)}\n\n`);
    } finally {
      release();
      clearInterval(heartbeat);
      raw.end();
    }
  }
}
