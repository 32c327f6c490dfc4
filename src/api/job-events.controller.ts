import { Controller, Get, Headers, Inject, Param, Query, Req, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiParam, ApiProduces, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { followJobEvents } from '../jobs/job-events.js';
import { JobStore } from '../jobs/job-store.js';
import { JobService } from '../jobs/job.service.js';
import type { JobEvent } from '../jobs/job.types.js';
import { REDIS } from '../jobs/redis.module.js';
import { AuthGuard } from './auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from './auth/principal.js';
import { eventsQuerySchema } from './dto/job-request.schema.js';
import { ERROR_SCHEMA, EVENT_SCHEMA } from './dto/openapi-schemas.js';
import { ApiError } from './errors/api-error.js';
import { mapJobErrors } from './errors/job-errors.js';
import { validate } from './validation.js';

const EVENT_ID = /^\d{1,20}-\d{1,20}$/;
const MAX_UINT64 = 2n ** 64n - 1n;
/** A Redis stream id: both parts are unsigned 64-bit (Redis refuses larger ones with an error). */
const isEventId = (id: string): boolean => EVENT_ID.test(id) && id.split('-').every((part) => BigInt(part) <= MAX_UINT64);

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
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get(':id/events')
  @ApiOperation({
    summary: "A job's events: Server-Sent Events replaying the log from the start (or after Last-Event-ID), then live until the terminal state event.",
    description: 'Each event has `id:`, `event:` (state | progress | log | result) and JSON `data:` (with `at`, epoch ms). Idle streams get `: heartbeat` comments. `?follow=false` answers the log so far as JSON.',
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiQuery({ name: 'follow', required: false, enum: ['true', 'false'] })
  @ApiHeader({ name: 'Last-Event-ID', required: false, description: 'Resume after this event id.', schema: { type: 'string', pattern: EVENT_ID.source } })
  @ApiProduces('text/event-stream', 'application/json')
  @ApiResponse({ status: 200, description: 'text/event-stream, or with follow=false `{items: [event]}`.', schema: { type: 'object', properties: { items: { type: 'array', items: EVENT_SCHEMA } } } })
  @ApiResponse({ status: 400, description: 'Invalid query or Last-Event-ID.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such job.', schema: ERROR_SCHEMA })
  async events(@Param('id') id: string, @Query() query: unknown, @Headers('last-event-id') lastEventId: string | undefined, @Req() request: FastifyRequest, @Res() reply: FastifyReply, @CurrentPrincipal() principal: Principal): Promise<void> {
    const { follow } = validate(eventsQuerySchema, query, 'query');
    if (lastEventId !== undefined && !isEventId(lastEventId)) {
      throw new ApiError(400, 'VALIDATION_FAILED', 'invalid header: Last-Event-ID: must be an event id like 1700000000000-0', { fields: [{ path: 'Last-Event-ID', message: 'must be an event id' }] });
    }
    await mapJobErrors(this.jobs.get(id, principal.tenant));
    if (follow === 'false') {
      const items: JobEvent[] = [];
      for (let page = await this.store.readEvents(id, lastEventId); page.length; page = await this.store.readEvents(id, items[items.length - 1]!.id)) items.push(...page);
      await reply.send({ items });
      return;
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-request-id': String(request.id) });
    raw.write(': stream open\n\n');
    const abort = new AbortController();
    request.raw.on('close', () => abort.abort());
    const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), this.config.sseHeartbeatMs);
    try {
      for await (const event of followJobEvents(this.redis, this.store, id, lastEventId, abort.signal)) raw.write(sseFrame(event));
    } catch (err) {
      raw.write(`event: error\ndata: ${JSON.stringify({ code: 'STREAM_FAILED', message: (err as Error).message })}\n\n`);
    } finally {
      clearInterval(heartbeat);
      raw.end();
    }
  }
}
