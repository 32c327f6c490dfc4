import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import { registry } from '../metrics/metrics.js';
import type { JobNotifier } from './job-notifier.js';
import { keys, type JobStore } from './job-store.js';
import { isTerminal, type JobError, type JobRecord, type JobState } from './job-types.js';
import type { JobQueues } from './queues.js';

export const jobsReconciled = new Counter({
  name: 'stevedore_jobs_reconciled_total',
  help:
    'Job records the reconciler failed because nothing would ever finish them, by reason ' +
    '(never_queued, no_queue_entry, queue_finished, lock_lost).',
  labelNames: ['reason'] as const,
  registers: [registry],
});

/**
 * Why a live record is left behind, from its state and what BullMQ has for its id:
 * - `never_queued`: `queued`, and no BullMQ job (the submit died between its record and its queue add);
 * - `no_queue_entry`: `running`, and no BullMQ job (nothing will hand it to a worker again);
 * - `queue_finished`: BullMQ completed or failed the job, yet the record is not terminal
 *   (e.g. BullMQ's own stalled limit failed it without running our code);
 * - `lock_lost`: BullMQ holds it active but no worker holds its lock (normally BullMQ's
 *   stalled check hands it back within two lock periods: only seen when nothing does).
 */
export type OrphanReason = 'never_queued' | 'no_queue_entry' | 'queue_finished' | 'lock_lost';

/** What BullMQ says of a job id (JobQueues.locate): its state ('unknown': no job) and whether its lock is held. */
export interface QueueSighting {
  state: string;
  locked: boolean;
}

/** The reason a record in `state` is left behind, or undefined while a worker has it or will take it. */
export function orphanReason(state: JobState, queue: QueueSighting): OrphanReason | undefined {
  if ((state !== 'queued' && state !== 'running') || queue.locked) return undefined;
  if (queue.state === 'unknown') return state === 'queued' ? 'never_queued' : 'no_queue_entry';
  if (queue.state === 'completed' || queue.state === 'failed') return 'queue_finished';
  if (queue.state === 'active') return 'lock_lost';
  return undefined; // waiting, prioritized, delayed: a worker will take it (a recovery or a retry, too)
}

/**
 * The error a left-behind record is failed with. Why these codes, and why fail rather than requeue:
 * - QUEUE_UNAVAILABLE for a job that never reached the queue: its caller was answered 503 (or
 *   its connection died), so it may have submitted again; running this one later would run the
 *   work twice. It is the code the submit's own clean-up (JobService.abandon) would have written
 *   had its process lived.
 * - WORKER_LOST for a job a worker had (or BullMQ finished): the code the job runner uses when a
 *   worker dies once too often. It may have done part of its work (a push), so it is not silently
 *   started again; the caller decides.
 */
export function orphanError(reason: OrphanReason, record: JobRecord, queue: QueueSighting): JobError {
  const details = { reconciled: reason, record_state: record.state, queue_state: queue.state };
  if (reason === 'never_queued')
    return {
      code: 'QUEUE_UNAVAILABLE',
      message: 'the job was recorded but never reached its queue (Redis was lost during the submit)',
      details,
    };
  const why =
    reason === 'no_queue_entry'
      ? 'its queue entry is gone'
      : reason === 'queue_finished'
        ? `the queue ${queue.state === 'failed' ? 'failed' : 'completed'} it without finishing the job`
        : 'no worker holds it and none took it back';
  return { code: 'WORKER_LOST', message: `the job's worker was lost: ${why}`, details };
}

export interface ReconcileSettings {
  /** How often a pass runs (0: never). */
  intervalMs: number;
  /** How old a record (since created, or since started when running) must be before it is judged. */
  afterMs: number;
  /** The workers' BullMQ lock (and stalled-check) period: see confirmAfter. */
  lockMs: number;
}

/** Takes or renews the one leader lease: the same process does pass after pass (its suspects carry over). */
const LEASE_LUA = `
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
`;
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const LEASE_KEY = 'stv:reconcile:leader';
const BATCH = 200;

type RedisWithLease = Redis & {
  stvReconcileLease(key: string, token: string, ttlMs: string): Promise<number>;
  stvReconcileRelease(key: string, token: string): Promise<number>;
};

/**
 * No record left behind: a periodic, cheap pass over the live index (`stv:jobs:live`, jobs not
 * yet terminal, by creation time; job-store.ts) that fails the records nothing will ever
 * finish. Only records older than `afterMs` are looked at (a submit whose queue add is merely
 * slow, or a worker just starting a job, is younger), and one is failed only when passes in a
 * row saw it left behind for the same reason — at least two, an interval apart, so a cancel
 * between its queue remove and its state write is never mistaken for a loss (longer for a
 * lockless active job: confirmAfter). The
 * failure itself is JobStore's conditional transition from the state the pass saw: a job a
 * worker took meanwhile is left alone. One process reconciles at a time (a Redis lease).
 */
export class JobReconciler {
  private readonly redis: RedisWithLease;
  private readonly token = randomUUID();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Ids the last pass saw left behind, why, and since when (consecutive passes): confirmed by a later one. */
  private suspects = new Map<string, { reason: OrphanReason; since: number }>();

  constructor(
    redis: Redis,
    private readonly store: Pick<JobStore, 'get' | 'transition'>,
    private readonly queues: Pick<JobQueues, 'locate'>,
    private readonly notifier: Pick<JobNotifier, 'finished'>,
    private readonly logger: { log(m: string): void; warn(m: string): void },
    private readonly settings: ReconcileSettings,
  ) {
    this.redis = redis as RedisWithLease;
    if (!('stvReconcileLease' in redis)) {
      redis.defineCommand('stvReconcileLease', { numberOfKeys: 1, lua: LEASE_LUA });
      redis.defineCommand('stvReconcileRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
    }
  }

  start(): void {
    if (!this.settings.intervalMs) return;
    const tick = () => {
      this.timer = setTimeout(() => {
        this.running = this.passQuietly().finally(() => {
          this.running = undefined;
          if (!this.stopped) tick();
        });
      }, this.settings.intervalMs);
      this.timer.unref();
    };
    tick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    await this.redis.stvReconcileRelease(LEASE_KEY, this.token).catch(() => undefined);
  }

  /** One pass (when this process holds the lease): the records it failed, by reason. */
  async pass(now = Date.now()): Promise<Partial<Record<OrphanReason, number>>> {
    const leaseMs = Math.max(3 * this.settings.intervalMs, 10_000);
    if ((await this.redis.stvReconcileLease(LEASE_KEY, this.token, String(leaseMs))) !== 1) {
      this.suspects.clear(); // another process reconciles; ours would be stale when we lead again
      return {};
    }
    const failed: Partial<Record<OrphanReason, number>> = {};
    const seen = new Map<string, { reason: OrphanReason; since: number }>();
    const oldest = String(now - this.settings.afterMs);
    // Oldest first, a batch at a time. Entries this pass removes (failed, or gone) leave the
    // order, so the next batch starts that much earlier; one another process removes
    // meanwhile may make this pass skip a record: the next pass sees it.
    for (let offset = 0; ;) {
      const ids = await this.redis.zrangebyscore(keys.live, '-inf', oldest, 'LIMIT', offset, BATCH);
      const gone: string[] = [];
      let removed = 0;
      for (const id of ids) {
        const reason = await this.judge(id, now, gone);
        if (!reason) continue;
        const before = this.suspects.get(id);
        const since = before?.reason === reason ? before.since : now;
        if (!before || before.reason !== reason || now - since < this.confirmAfter(reason)) seen.set(id, { reason, since });
        else if (await this.fail(id, reason)) {
          failed[reason] = (failed[reason] ?? 0) + 1;
          removed++;
        }
      }
      if (gone.length) await this.redis.zrem(keys.live, ...gone);
      if (ids.length < BATCH) break;
      offset += ids.length - removed - gone.length;
    }
    this.suspects = seen;
    return failed;
  }

  /**
   * How long a sighting must last (over consecutive passes) before it is acted on. An active
   * job nobody holds the lock of is BullMQ's to hand back first: its stalled check (every
   * lock period, in every worker) moves it back to wait within about two periods, and the
   * job runner recovers it; only one still lockless after that is lost. The other reasons
   * need only a second pass.
   */
  private confirmAfter(reason: OrphanReason): number {
    return reason === 'lock_lost' ? 2 * this.settings.lockMs + this.settings.intervalMs : 1;
  }

  /** Why the job is left behind, if it is; `gone` collects ids to drop from the live index. */
  private async judge(id: string, now: number, gone: string[]): Promise<OrphanReason | undefined> {
    const record = await this.store.get(id);
    if (!record || isTerminal(record.state)) {
      gone.push(id); // expired, or finished by a version without the live index
      return undefined;
    }
    const since = Date.parse(record.state === 'running' ? (record.started_at ?? record.created_at) : record.created_at);
    if (now - since < this.settings.afterMs) return undefined;
    return orphanReason(record.state, await this.queues.locate(record.action, id));
  }

  private async fail(id: string, reason: OrphanReason): Promise<boolean> {
    // Read again, with BullMQ's answer after it: the transition below is conditional on this state.
    const record = await this.store.get(id);
    if (!record) return false;
    const queue = await this.queues.locate(record.action, id);
    if (orphanReason(record.state, queue) !== reason) return false;
    const error = orphanError(reason, record, queue);
    const done = await this.store.transition(id, [record.state], 'failed', { finished_at: new Date().toISOString(), error }, { error });
    if (!done?.applied) return false;
    jobsReconciled.inc({ reason });
    this.logger.warn(`job ${id} (${record.action}, ${record.state}) failed by the reconciler: ${error.code} (${reason})`);
    await this.notifier.finished(id);
    return true;
  }

  private async passQuietly(): Promise<void> {
    try {
      await this.pass();
    } catch (err) {
      // Sightings must come from consecutive passes: after an outage, BullMQ's own
      // recovery gets its turn before anything it might still fix is failed.
      this.suspects.clear();
      this.logger.warn(`reconcile: pass failed: ${(err as Error).message}`);
    }
  }
}
