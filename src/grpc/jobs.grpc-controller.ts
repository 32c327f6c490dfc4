import { Controller, UseFilters } from '@nestjs/common';
import { GrpcMethod, RpcException } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import { Observable } from 'rxjs';
import { AdmissionService } from '../admission/admission.service.js';
import { listJobsQuerySchema } from '../jobs/job-request.schema.js';
import { validate } from '../errors/validation.js';
import { StreamLimits } from '../jobs/stream-limits.js';
import { EventStreamHub } from '../jobs/event-stream-hub.js';
import { parseEventId } from '../jobs/ids.js';
import { followJobEvents } from '../jobs/job-events.js';
import { JobStore } from '../jobs/job-store.js';
import { JobService } from '../jobs/job.service.js';
import type { JobRecord } from '../jobs/job-types.js';
import { GrpcAuth } from './grpc-auth.js';
import { toGrpcError } from './grpc-errors.js';
import { GrpcExceptionFilter } from './grpc-exception.filter.js';

interface SubmitMessage {
  action?: string;
  callback_url?: string;
  timeout_seconds?: number;
  idempotency_key?: string;
  concurrency_key?: string;
  [action: string]: unknown;
}

/** Proto3 has no "unset" for scalars: empty values mean absent, except `optional` fields that were set. */
function present(fields: Record<string, unknown>, key: string, value: unknown): boolean {
  if (`_${key}` in fields) return fields[`_${key}`] === key;
  if (key.startsWith('_') || value === '' || value === null || value === undefined || value === false) return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return Object.keys(value).length > 0;
  return true;
}

function clean(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) if (present(fields, k, v)) out[k] = v;
  return out;
}

/** A scan's nested policy message, as the REST body has it. */
function cleanScanOptions(body: Record<string, unknown>): void {
  // `policy_name` is REST's `policy: "<name>"`; beside an inline policy it stays, and the schema refuses it.
  if (body.policy_name && !body.policy) {
    body.policy = body.policy_name;
    delete body.policy_name;
    return;
  }
  if (!body.policy) return;
  const policy = clean(body.policy as Record<string, unknown>);
  if (Array.isArray(policy.allow))
    policy.allow = (policy.allow as Record<string, string>[]).map((a) => ({
      id: a.id,
      reason: a.reason,
      ...(a.expires ? { expires: a.expires } : {}),
    }));
  body.policy = policy;
}

/** The REST body a SubmitRequest stands for: one validator for both APIs. */
export function submitToBody(msg: SubmitMessage): Record<string, unknown> {
  const action = msg.action;
  const fields = (action && (msg[action] as Record<string, unknown>)) || {};
  const body: Record<string, unknown> = { action };
  for (const [k, v] of Object.entries(fields)) if (present(fields, k, v)) body[k] = v;
  if (action === 'scan') cleanScanOptions(body);
  if (action === 'build' && body.scan) cleanScanOptions((body.scan = clean(body.scan as Record<string, unknown>)));
  if (action === 'build' && body.sign) body.sign = (body.sign as { key?: string }).key ? { key: (body.sign as { key: string }).key } : true;
  if (action === 'optimize' && body.context_upload) {
    body.context = { upload: body.context_upload };
    delete body.context_upload;
  }
  if (action === 'optimize' && body.verify_commands) {
    body.verify = { commands: (body.verify_commands as { argv?: string[] }[]).map((c) => c.argv ?? []) };
    delete body.verify_commands;
  }
  if (action === 'build') {
    const { context_upload, git } = body as { context_upload?: string; git?: { url: string; ref: string; subdir: string } };
    delete body.context_upload;
    delete body.git;
    if (context_upload) body.context = { upload: context_upload };
    else if (git?.url) body.context = { git: git.url, ...(git.ref ? { ref: git.ref } : {}), ...(git.subdir ? { subdir: git.subdir } : {}) };
  }
  if (msg.callback_url) body.callback_url = msg.callback_url;
  if (msg.timeout_seconds) body.timeout_seconds = msg.timeout_seconds;
  if (msg.concurrency_key) body.concurrency_key = msg.concurrency_key;
  return body;
}

export function toJobMessage(job: JobRecord) {
  return {
    id: job.id,
    tenant: job.tenant,
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
    private readonly hub: EventStreamHub,
    private readonly limits: StreamLimits,
    private readonly admission: AdmissionService,
  ) {}

  @GrpcMethod('Jobs', 'Submit')
  async submit(msg: SubmitMessage, metadata: Metadata) {
    const principal = await this.auth.authorize(metadata, 'jobs:write');
    // Proto3 has no unset string: an empty idempotency_key means none.
    const { job } = await this.admission.submit(submitToBody(msg), principal, {
      idempotencyKey: msg.idempotency_key || undefined,
      idempotencyKeyIn: 'body',
    });
    return toJobMessage(job);
  }

  @GrpcMethod('Jobs', 'Get')
  async get(msg: { id: string }, metadata: Metadata) {
    const { tenant } = await this.auth.authorize(metadata, 'jobs:read');
    return toJobMessage(await this.jobs.get(msg.id, tenant));
  }

  @GrpcMethod('Jobs', 'List')
  async list(msg: { state?: string; action?: string; limit?: number; cursor?: string }, metadata: Metadata) {
    const { tenant } = await this.auth.authorize(metadata, 'jobs:read');
    const query = Object.fromEntries(Object.entries(msg).filter(([, v]) => v !== '' && v !== 0 && v !== undefined && v !== null));
    const filter = validate(listJobsQuerySchema, query, 'query');
    const page = await this.jobs.list({ ...filter, tenant, state: filter.state as JobRecord['state'] | undefined });
    return { items: page.items.map(toJobMessage), next_cursor: page.next_cursor ?? '' };
  }

  @GrpcMethod('Jobs', 'Cancel')
  async cancel(msg: { id: string }, metadata: Metadata) {
    const { tenant } = await this.auth.authorize(metadata, 'jobs:write');
    return toJobMessage(await this.jobs.cancel(msg.id, tenant));
  }

  @GrpcMethod('Jobs', 'Watch')
  watch(msg: { id: string; after_event_id?: string }, metadata: Metadata): Observable<unknown> {
    return new Observable((subscriber) => {
      const abort = new AbortController();
      let release = () => undefined as void;
      (async () => {
        const principal = await this.auth.authorize(metadata, 'jobs:read');
        // Checked before the job is looked up, as REST checks Last-Event-ID.
        const after = msg.after_event_id ? parseEventId(msg.after_event_id) : undefined;
        if (msg.after_event_id && !after)
          throw new RpcException({
            code: 3,
            message: 'VALIDATION_FAILED: after_event_id must be an event id like 1700000000000-0 (two unsigned 64-bit numbers)',
          });
        await this.jobs.get(msg.id, principal.tenant);
        release = this.limits.acquire(principal);
        if (abort.signal.aborted) return release();
        for await (const e of followJobEvents(this.hub, this.store, msg.id, after, abort.signal)) {
          subscriber.next({ id: e.id, type: e.type, at: e.at, data_json: JSON.stringify(e.data) });
        }
        subscriber.complete();
      })()
        .catch((err: unknown) =>
          subscriber.error(toGrpcError(err) ?? { code: 13, message: 'the event stream failed; watch again with after_event_id to resume' }),
        )
        .finally(() => release());
      return () => {
        abort.abort();
        release();
      };
    });
  }
}
