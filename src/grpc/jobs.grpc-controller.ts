import { Controller, Inject, UseFilters } from '@nestjs/common';
import { GrpcMethod, RpcException } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import type { Redis } from 'ioredis';
import { Observable } from 'rxjs';
import { parseJobRequest } from '../api/jobs.controller.js';
import { idempotencyKeySchema, listJobsQuerySchema } from '../api/dto/job-request.schema.js';
import { validate } from '../api/validation.js';
import { followJobEvents } from '../jobs/job-events.js';
import { JobStore } from '../jobs/job-store.js';
import { JobService } from '../jobs/job.service.js';
import type { JobRecord } from '../jobs/job.types.js';
import { REDIS } from '../jobs/redis.module.js';
import { GrpcAuth } from './grpc-auth.js';
import { toGrpcError } from './grpc-errors.js';
import { GrpcExceptionFilter } from './grpc-exception.filter.js';

interface SubmitMessage {
  action?: string;
  callback_url?: string;
  timeout_seconds?: number;
  idempotency_key?: string;
  [action: string]: unknown;
}

/** The REST body a SubmitRequest stands for: one validator for both APIs. */
export function submitToBody(msg: SubmitMessage): Record<string, unknown> {
  const action = msg.action;
  const fields = (action && (msg[action] as Record<string, unknown>)) || {};
  const body: Record<string, unknown> = { action };
  for (const [k, v] of Object.entries(fields)) if (v !== '' && v !== null && v !== undefined) body[k] = v;
  if (msg.callback_url) body.callback_url = msg.callback_url;
  if (msg.timeout_seconds) body.timeout_seconds = msg.timeout_seconds;
  return body;
}

export function toJobMessage(job: JobRecord) {
  return {
    id: job.id,
    action: job.action,
    state: job.state,
    request_json: JSON.stringify(job.request),
    result_json: job.result ? JSON.stringify(job.result) : '',
    error: job.error ? { code: job.error.code, message: job.error.message, details_json: JSON.stringify(job.error.details) } : null,
    created_at: job.created_at,
    started_at: job.started_at ?? '',
    finished_at: job.finished_at ?? '',
    attempts: job.attempts,
    timeout_seconds: job.timeout_seconds,
    cancel_requested: !!job.cancel_requested,
  };
}

@Controller()
@UseFilters(GrpcExceptionFilter)
export class JobsGrpcController {
  constructor(
    private readonly jobs: JobService,
    private readonly store: JobStore,
    private readonly auth: GrpcAuth,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  @GrpcMethod('Jobs', 'Submit')
  async submit(msg: SubmitMessage, metadata: Metadata) {
    this.auth.assertAdmin(metadata);
    const request = parseJobRequest(submitToBody(msg));
    const key = msg.idempotency_key ? validate(idempotencyKeySchema, msg.idempotency_key, 'body') : undefined;
    return toJobMessage((await this.jobs.submit(request, key)).job);
  }

  @GrpcMethod('Jobs', 'Get')
  async get(msg: { id: string }, metadata: Metadata) {
    this.auth.assertAdmin(metadata);
    return toJobMessage(await this.jobs.get(msg.id));
  }

  @GrpcMethod('Jobs', 'List')
  async list(msg: { state?: string; action?: string; limit?: number; cursor?: string }, metadata: Metadata) {
    this.auth.assertAdmin(metadata);
    const query = Object.fromEntries(Object.entries(msg).filter(([, v]) => v !== '' && v !== 0 && v !== undefined && v !== null));
    const filter = validate(listJobsQuerySchema, query, 'query');
    const page = await this.jobs.list({ ...filter, state: filter.state as JobRecord['state'] | undefined });
    return { items: page.items.map(toJobMessage), next_cursor: page.next_cursor ?? '' };
  }

  @GrpcMethod('Jobs', 'Cancel')
  async cancel(msg: { id: string }, metadata: Metadata) {
    this.auth.assertAdmin(metadata);
    return toJobMessage(await this.jobs.cancel(msg.id));
  }

  @GrpcMethod('Jobs', 'Watch')
  watch(msg: { id: string; after_event_id?: string }, metadata: Metadata): Observable<unknown> {
    this.auth.assertAdmin(metadata);
    return new Observable((subscriber) => {
      const abort = new AbortController();
      (async () => {
        await this.jobs.get(msg.id);
        if (msg.after_event_id && !/^\d{1,20}-\d{1,20}$/.test(msg.after_event_id)) throw new RpcException({ code: 3, message: 'VALIDATION_FAILED: after_event_id must be an event id like 1700000000000-0' });
        for await (const e of followJobEvents(this.redis, this.store, msg.id, msg.after_event_id || undefined, abort.signal)) {
          subscriber.next({ id: e.id, type: e.type, at: e.at, data_json: JSON.stringify(e.data) });
        }
        subscriber.complete();
      })().catch((err: unknown) => subscriber.error(toGrpcError(err) ?? { code: 13, message: 'internal error; see the server log' }));
      return () => abort.abort();
    });
  }
}
