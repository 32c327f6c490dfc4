import { randomUUID, createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { CancelBus } from './cancel-bus.js';
import { isJobId } from './ids.js';
import { InvalidCursorError, keys, type JobStore, type ListFilter } from './job-store.js';
import type { JobQueues, Lane } from './queues.js';
import { fairKey } from './fair-scheduler.js';
import type { JobNotifier } from './job-notifier.js';
import { ACTION_TABLE, type JobRequest } from './actions.js';
import { isTerminal, type JobRecord, type RescanOrigin } from './job-types.js';
import { AppError, type ErrorKind } from '../errors/app-error.js';

/** How long a failed submit keeps trying to fail its possibly written record (Redis down). */
const ABANDON_RETRY_MS = 10 * 60_000;

const KIND = {
  NOT_FOUND: 'not_found',
  IDEMPOTENCY_CONFLICT: 'conflict',
  JOB_FINISHED: 'failed_precondition',
  QUEUE_UNAVAILABLE: 'unavailable',
} as const satisfies Record<string, ErrorKind>;

/** Why a job operation was refused; the transports report it like any AppError. */
export class JobOperationError extends AppError {
  declare readonly code: keyof typeof KIND;

  constructor(code: keyof typeof KIND, message: string, details: Record<string, unknown> = {}) {
    super(KIND[code], code, message, details);
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
    private readonly notifier: JobNotifier,
  ) {}

  /** `requestId` is kept on the job's first event and its log line, to find the submit again. */
  /**
   * `lane` and `origin` are the server's own (rescans): admission never passes them, so no
   * client can queue into the background lane or claim another job's artifacts.
   */
  async submit(
    request: JobRequest,
    tenant: string,
    options: { idempotencyKey?: string; requestId?: string; lane?: Lane; origin?: RescanOrigin } = {},
  ): Promise<SubmitOutcome> {
    let idempotencyKey = options.idempotencyKey;
    const id = randomUUID();
    if (idempotencyKey) {
      idempotencyKey = `${tenant}:${idempotencyKey}`;
      const fingerprint = createHash('sha256').update(canonicalJson(request)).digest('hex');
      const claimed = await this.redis.set(
        keys.idempotency(idempotencyKey),
        JSON.stringify({ fingerprint, id }),
        'EX',
        this.retentionSeconds,
        'NX',
      );
      if (claimed !== 'OK') {
        const earlier = JSON.parse((await this.redis.get(keys.idempotency(idempotencyKey))) ?? '{}') as {
          fingerprint?: string;
          id?: string;
        };
        if (earlier.fingerprint !== fingerprint) {
          throw new JobOperationError('IDEMPOTENCY_CONFLICT', 'this Idempotency-Key was used with a different request body', {
            job_id: earlier.id,
          });
        }
        const job = earlier.id ? await this.store.get(earlier.id) : undefined;
        if (job) return { job, created: false };
        // The earlier job expired: the key is reused for a new one below.
        await this.redis.set(keys.idempotency(idempotencyKey), JSON.stringify({ fingerprint, id }), 'EX', this.retentionSeconds);
      }
    }
    const job: JobRecord = {
      id,
      tenant,
      action: request.action,
      state: 'queued',
      request,
      result: null,
      error: null,
      created_at: new Date().toISOString(),
      started_at: null,
      finished_at: null,
      attempts: 0,
      timeout_seconds: request.timeout_seconds ?? ACTION_TABLE[request.action].timeoutSeconds,
      ...(options.origin ? { origin: options.origin } : {}),
    };
    const lane = options.lane ?? 'interactive';
    // The record first (it also numbers the job for fair scheduling), then the queue
    // add: no worker can take a job before its record exists.
    let priority: number;
    try {
      priority = await this.store.create(
        job,
        options.requestId ? { request_id: options.requestId } : {},
        lane === 'background' ? `${fairKey(job.action)}:background` : undefined,
      );
    } catch (err) {
      // Redis may still have written the record (a reply lost with the connection, or a
      // command time limit passed while Redis was frozen): see abandon().
      this.abandon(id, idempotencyKey);
      throw err;
    }
    try {
      await this.queues.add(job.action, id, priority, lane);
    } catch (err) {
      this.abandon(id, idempotencyKey);
      throw new JobOperationError('QUEUE_UNAVAILABLE', `could not queue the job: ${(err as Error).message}`);
    }
    if (request.concurrency_key) await this.supersede(tenant, request.concurrency_key, id);
    return { job, created: true };
  }

  /**
   * Nothing half-written: a submit that failed after its record may have been written is
   * failed visibly (QUEUE_UNAVAILABLE), never left `queued` with nothing on the queue.
   * Redis is usually what failed, so this runs in the background and tries again every
   * second (up to ABANDON_RETRY_MS) until Redis answers. Its commands go out on the same
   * connection after the submit's own, so Redis applies them after a late record write.
   * A job a worker already took (the queue add went through after all) is left to run.
   */
  private abandon(id: string, idempotencyKey: string | undefined): void {
    const deadline = Date.now() + ABANDON_RETRY_MS;
    const error = { code: 'QUEUE_UNAVAILABLE', message: 'the job could not be queued', details: {} };
    const attempt = async () => {
      try {
        const done = await this.store.transition(id, ['queued'], 'failed', { finished_at: new Date().toISOString(), error }, { error });
        if (done?.applied) await this.notifier.finished(id);
        if (idempotencyKey) {
          const claim = JSON.parse((await this.redis.get(keys.idempotency(idempotencyKey))) ?? '{}') as { id?: string };
          if (claim.id === id) await this.redis.del(keys.idempotency(idempotencyKey));
        }
      } catch {
        if (Date.now() < deadline) setTimeout(() => void attempt(), 1_000).unref();
      }
    };
    void attempt();
  }

  /**
   * Another tenant's job answers exactly like a missing one, and so does an id that is
   * not a uuid: it is never looked up (it could name another Redis key).
   */
  async get(id: string, tenant: string): Promise<JobRecord> {
    if (!isJobId(id)) throw new JobOperationError('NOT_FOUND', `no job ${String(id).slice(0, 100)}`);
    const job = await this.store.get(id);
    if (!job || job.tenant !== tenant) throw new JobOperationError('NOT_FOUND', `no job ${id}`);
    return job;
  }

  async list(filter: ListFilter) {
    try {
      return await this.store.list(filter);
    } catch (err) {
      if (err instanceof InvalidCursorError)
        throw new AppError('invalid', 'VALIDATION_FAILED', 'invalid query: cursor: not a cursor this server issued', {
          fields: [{ path: 'cursor', message: 'not a cursor this server issued' }],
        });
      throw err;
    }
  }

  /**
   * The newest job with a concurrency key wins: the one it replaces is cancelled with
   * SUPERSEDED (at once when queued, by aborting its work when running).
   */
  private async supersede(tenant: string, concurrencyKey: string, newId: string): Promise<void> {
    const previous = await this.redis.set(keys.concurrency(tenant, concurrencyKey), newId, 'EX', this.retentionSeconds, 'GET');
    if (!previous || previous === newId) return;
    await this.cancel(previous, tenant, 'SUPERSEDED', { superseded_by: newId }).catch((err: unknown) => {
      if (!(err instanceof JobOperationError)) throw err; // gone or finished: nothing to supersede
    });
  }

  /**
   * A queued job is removed from its queue and cancelled at once; a running one is
   * flagged and its worker told to abort (it then records `cancelled`).
   */
  async cancel(
    id: string,
    tenant: string,
    code: 'CANCELLED' | 'SUPERSEDED' = 'CANCELLED',
    details: Record<string, unknown> = {},
  ): Promise<JobRecord> {
    const job = await this.get(id, tenant);
    if (isTerminal(job.state)) throw new JobOperationError('JOB_FINISHED', `job ${id} already ${job.state}`, { state: job.state });
    const why = code === 'SUPERSEDED' ? `superseded by job ${String(details.superseded_by)}` : 'cancel requested';
    if (job.state === 'queued' && (await this.queues.remove(job.action, id))) {
      const error = { code, message: code === 'SUPERSEDED' ? `${why} (same concurrency_key)` : 'cancelled while queued', details };
      await this.store.transition(id, ['queued'], 'cancelled', { finished_at: new Date().toISOString(), error }, { reason: why, error });
      await this.notifier.finished(id);
    } else {
      await this.store.transition(id, ['queued', 'running'], undefined, { cancel_requested: true, cancel_code: code });
      await this.cancelBus.publish(id);
    }
    return this.get(id, tenant);
  }
}

/**
 * JSON with sorted keys: the same request always has the same fingerprint. Keys admission
 * adds itself (a named policy's snapshot) are left out: the fingerprint is of what the
 * caller sent, so editing the policy does not turn a retried submit into a conflict.
 */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined && !ADMISSION_ADDED.has(k))
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const ADMISSION_ADDED = new Set(['policy_snapshot']);
