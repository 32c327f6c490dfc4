import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ACTION_TABLE, ACTIONS, type Action } from './actions.js';

/** Each action's queue (its attempts come from its row in jobs/actions.ts). */
export const queueName = (action: Action) => `stevedore-${action}`;

/**
 * Where a job waits. `interactive`: the action's own queue, fair between tenants.
 * `background`: a queue of its own beside it (rescans after a vulnerability DB change),
 * served by its own small worker pool, so a thousand rescans never sit in front of a
 * scan somebody is waiting for; only the actions listed here have one.
 */
export type Lane = 'interactive' | 'background';
export const BACKGROUND_ACTIONS = ['scan'] as const satisfies readonly Action[];
export type BackgroundAction = (typeof BACKGROUND_ACTIONS)[number];
export const hasBackgroundLane = (action: Action): action is BackgroundAction => (BACKGROUND_ACTIONS as readonly Action[]).includes(action);
export const backgroundQueueName = (action: BackgroundAction) => `stevedore-${action}-background`;
/** BullMQ keys live under their own prefix, apart from job records. */
export const QUEUE_PREFIX = 'stv-bull';

/** The payload of a queued job: only its id; everything else is in the job record. */
export interface QueuePayload {
  jobId: string;
}

/** BullMQ workers want a connection that retries forever rather than failing commands. */
export function bullConnection(redisUrl: string): Redis {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null, enableReadyCheck: true });
  connection.on('error', () => undefined); // readiness reports Redis; BullMQ reconnects
  return connection;
}

/** One BullMQ queue per action, so heavy builds never starve cheap inspects. */
export class JobQueues {
  private readonly queues = new Map<Action, Queue<QueuePayload>>();
  private readonly background = new Map<Action, Queue<QueuePayload>>();

  constructor(connection: ConnectionOptions) {
    const open = (name: string) => {
      const queue = new Queue<QueuePayload>(name, { connection, prefix: QUEUE_PREFIX });
      queue.on('error', () => undefined); // connection trouble is what /readyz reports
      return queue;
    };
    for (const action of ACTIONS) this.queues.set(action, open(queueName(action)));
    for (const action of BACKGROUND_ACTIONS) this.background.set(action, open(backgroundQueueName(action)));
  }

  /**
   * `priority` comes from the FairScheduler (lower runs first). The background lane is
   * plain FIFO: its jobs are all the server's own, so there is no tenant to be fair to.
   */
  async add(action: Action, jobId: string, priority: number, lane: Lane = 'interactive'): Promise<void> {
    const queue = lane === 'background' ? this.background.get(action) : this.queue(action);
    if (!queue) throw new Error(`${action} has no background lane`);
    await queue.add(
      action,
      { jobId },
      {
        jobId,
        ...(lane === 'background' ? {} : { priority }),
        attempts: ACTION_TABLE[action].attempts,
        backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600 },
      },
    );
  }

  /** Removes a job that no worker holds (waiting or delayed). False when it is active. */
  async remove(action: Action, jobId: string): Promise<boolean> {
    if ((await this.queue(action).remove(jobId)) === 1) return true;
    const background = this.background.get(action);
    return !!background && (await background.remove(jobId)) === 1;
  }

  /**
   * Where BullMQ has a job (the reconciler asks): its state in the action's queue, else in
   * its background lane ('unknown' when in neither), and whether a worker holds its lock.
   * The lock key is BullMQ's own (`<job key>:lock`, set by moveToActive and renewed by the
   * worker holding the job; what moveStalledJobsToWait checks), read without taking it.
   */
  async locate(action: Action, jobId: string): Promise<{ state: string; locked: boolean }> {
    for (const queue of [this.queue(action), this.background.get(action)]) {
      if (!queue) continue;
      const client = await queue.getBackend().client;
      // A held lock means an active job with a live worker: no need for the state script.
      if ((await client.get(`${queue.toKey(jobId)}:lock`)) !== null) return { state: 'active', locked: true };
      const state = await queue.getJobState(jobId);
      if (state !== 'unknown') return { state, locked: false };
    }
    return { state: 'unknown', locked: false };
  }

  /** Jobs per queue and state; `waiting` counts prioritized jobs too (all of ours are: fair scheduling). */
  async counts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const queue of this.all()) {
      const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
      out[queue.name] = {
        waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        failed: c.failed ?? 0,
      };
    }
    return out;
  }

  /** The BullMQ queues themselves, in ACTIONS order, then the background lanes (for the operator's bull-board). */
  all(): Queue<QueuePayload>[] {
    return [...this.queues.values(), ...this.background.values()];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }

  private queue(action: Action): Queue<QueuePayload> {
    return this.queues.get(action)!;
  }
}
