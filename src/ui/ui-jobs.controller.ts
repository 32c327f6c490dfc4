import { Controller, Get, Headers, Inject, Param, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { EventStreamHub } from '../jobs/event-stream-hub.js';
import { isJobId, parseEventId } from '../jobs/ids.js';
import { streamJobEvents } from '../jobs/sse-stream.js';
import { JobStore } from '../jobs/job-store.js';
import { JOB_HTML, NOT_FOUND_HTML } from './assets/job-page.js';
import { DashboardGuard, DashboardRefusalFilter } from './dashboard.guard.js';
import { toJobView } from './job-view.js';
import { PAGE_HEADERS, sendPage } from './ui-pages.controller.js';

/**
 * The job page and its data, for the operator: any tenant's job (the admin token sees
 * every tenant here, unlike /v1 where it is the `default` tenant). The event stream is
 * a cookie-authenticated twin of GET /v1/jobs/:id/events, because EventSource cannot
 * send an Authorization header.
 */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardRefusalFilter)
@Controller('ui')
export class UiJobsController {
  constructor(
    private readonly store: JobStore,
    private readonly hub: EventStreamHub,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('jobs/:id')
  async page(@Param('id') id: string, @Res() reply: FastifyReply) {
    const found = isJobId(id) && (await this.store.get(id));
    return found ? sendPage(reply, JOB_HTML) : sendPage(reply, NOT_FOUND_HTML, 404);
  }

  @Get('api/jobs/:id')
  async view(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    const job = isJobId(id) ? await this.store.get(id) : undefined;
    if (!job) throw new AppError('not_found', 'NOT_FOUND', `job ${id} not found`);
    void reply.header('cache-control', 'no-store');
    return toJobView(job);
  }

  @Get('api/jobs/:id/events')
  async events(
    @Param('id') id: string,
    @Headers('last-event-id') lastEventId: string | undefined,
    @Req() request: FastifyRequest,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    if (!isJobId(id) || !(await this.store.get(id))) throw new AppError('not_found', 'NOT_FOUND', `job ${id} not found`);
    // A browser's reconnect resumes after the last event it saw; a bad id restarts the replay.
    const after = lastEventId !== undefined ? parseEventId(lastEventId) : undefined;
    await streamJobEvents({ request, reply }, id, {
      hub: this.hub,
      store: this.store,
      after,
      heartbeatMs: this.config.sseHeartbeatMs,
      headers: PAGE_HEADERS,
    });
  }
}
