import { randomUUID, createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CancelBus } from './cancel-bus.js';
import { keys, type JobStore, type ListFilter } from './job-store.js';
import type { JobQueues } from './queues.js';
import { DEFAULT_TIMEOUT_SECONDS, isTerminal, type JobRecord, type JobRequest } from './job.types.js';

/** Why a job operation was refused; the API layers map `code` to HTTP and gRPC status. */
export class JobOperationError extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'IDEMPOTENCY_CONFLICT' | 'JOB_FINISHED' | 'QUEUE_UNAVAILABLE',
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'JobOperationError';
  }
}

export interface SubmitOutcome {
  job: JobRecord;
  /** False when an Idempotency-Key matched an earlier submission. */
  created: boolean;
}

/** Submit, read, list and cancel jobs: shared by REST and gRPC. */
export class JobService {
  constructor(
    private readonly redis: Redis,
    private readonly store: JobStore,
    private readonly queues: JobQueues,
    private readonly cancelBus: CancelBus,
    private readonly retentionSeconds: number,
  ) {}

  async submit(request: JobRequest, idempotencyKey?: string): Promise<SubmitOutcome> {
    const id = randomUUID();
    if (idempotencyKey) {
      const fingerprint = createHash('sha256').update(canonicalJson(request)).digest('hex');
      const claimed = await this.redis.set(keys.idempotency(idempotencyKey), JSON.stringify({ fingerprint, id }), 'EX', this.retentionSeconds, 'NX');
      if (claimed !== 'OK') {
        const earlier = JSON.parse((await this.redis.get(keys.idempotency(idempotencyKey))) ?? '{}') as { fingerprint?: string; id?: string };
        if (earlier.fingerprint !== fingerprint) {
          throw new JobOperationError('IDEMPOTENCY_CONFLICT', 'this Idempotency-Key was used with a different request body', { job_id: earlier.id });
        }
        const job = earlier.id ? await this.store.get(earlier.id) : undefined;
        if (job) return { job, created: false };
        // The earlier job expired: the key is reused for a new one below.
        await this.redis.set(keys.idempotency(idempotencyKey), JSON.stringify({ fingerprint, id }), 'EX', this.retentionSeconds);
      }
    }
    const job: JobRecord = {
      id,
      action: request.action,
      state: 'queued',
      request,
      result: null,
      error: null,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
      attempts: 0,
      timeout_seconds: request.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS[request.action],
    };
    // Record and queue add are sent back to back on the same connection, record first:
    // Redis runs one connection's commands in order, so no worker can take the job
    // before its record exists, and the submit costs one round trip, not two.
    const created = this.store.create(job);
    const queued = this.queues.add(job.action, id);
    await created.catch(async (err: Error) => {
      await queued.catch(() => undefined);
      await this.queues.remove(job.action, id).catch(() => undefined);
      throw err;
    });
    try {
      await queued;
    } catch (err) {
      // Nothing half-written: a job that could not be queued is failed, visibly.
      await this.store.transition(id, ['queued'], 'failed', { finished_at: new Date().toISOString(), error: { code: 'QUEUE_UNAVAILABLE', message: 'the job could not be queued', details: {} } });
      if (idempotencyKey) await this.redis.del(keys.idempotency(idempotencyKey));
      throw new JobOperationError('QUEUE_UNAVAILABLE', `could not queue the job: ${(err as Error).message}`);
    }
    return { job, created: true };
  }

  async get(id: string): Promise<JobRecord> {
    const job = await this.store.get(id);
    if (!job) throw new JobOperationError('NOT_FOUND', `no job ${id}`);
    return job;
  }

  list(filter: ListFilter) {
    return this.store.list(filter);
  }

  /**
   * A queued job is removed from its queue and cancelled at once; a running one is
   * flagged and its worker told to abort (it then records `cancelled`).
   */
  async cancel(id: string): Promise<JobRecord> {
    const job = await this.get(id);
    if (isTerminal(job.state)) throw new JobOperationError('JOB_FINISHED', `job ${id} already ${job.state}`, { state: job.state });
    if (job.state === 'queued' && (await this.queues.remove(job.action, id))) {
      await this.store.transition(id, ['queued'], 'cancelled', { finished_at: new Date().toISOString(), error: { code: 'CANCELLED', message: 'cancelled while queued', details: {} } }, { reason: 'cancel requested' });
    } else {
      await this.store.transition(id, ['queued', 'running'], undefined, { cancel_requested: true });
      await this.cancelBus.publish(id);
    }
    return this.get(id);
  }
}

/** JSON with sorted keys: the same request always has the same fingerprint. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().filter((k) => (value as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
