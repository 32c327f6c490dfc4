import { Queue, type ConnectionOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { ACTION_TABLE, ACTIONS, type Action } from './actions.js';

/** Each action's queue (its attempts come from its row in jobs/actions.ts). */
export const queueName = (action: Action) => `stevedore-${action}`;
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

  constructor(connection: ConnectionOptions) {
    for (const action of ACTIONS) {
      const queue = new Queue<QueuePayload>(queueName(action), { connection, prefix: QUEUE_PREFIX });
      queue.on('error', () => undefined); // connection trouble is what /readyz reports
      this.queues.set(action, queue);
    }
  }

  /** `priority` comes from the FairScheduler (lower runs first). */
  async add(action: Action, jobId: string, priority: number): Promise<void> {
    await this.queue(action).add(
      action,
      { jobId },
      {
        jobId,
        priority,
        attempts: ACTION_TABLE[action].attempts,
        backoff: { type: 'exponential', delay: 1_000, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: { age: 24 * 3600 },
      },
    );
  }

  /** Removes a job that no worker holds (waiting or delayed). False when it is active. */
  async remove(action: Action, jobId: string): Promise<boolean> {
    return (await this.queue(action).remove(jobId)) === 1;
  }

  /** Jobs per queue and state; `waiting` counts prioritized jobs too (all of ours are: fair scheduling). */
  async counts(): Promise<Record<string, Record<string, number>>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [action, queue] of this.queues) {
      const c = await queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed', 'failed');
      out[queueName(action)] = {
        waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
        active: c.active ?? 0,
        delayed: c.delayed ?? 0,
        failed: c.failed ?? 0,
      };
    }
    return out;
  }

  /** The BullMQ queues themselves, in ACTIONS order (for the operator's bull-board). */
  all(): Queue<QueuePayload>[] {
    return [...this.queues.values()];
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
  }

  private queue(action: Action): Queue<QueuePayload> {
    return this.queues.get(action)!;
  }
}
