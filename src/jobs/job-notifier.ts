import { Logger } from '@nestjs/common';
import type { JobStore } from './job-store.js';
import { isTerminal, type JobRecord } from './job-types.js';

export type JobFinishedListener = (job: JobRecord) => Promise<void>;

/**
 * Tells interested parts (webhooks) that a job reached a terminal state, whichever
 * process moved it there: a worker, or the api cancelling a queued job. Listeners
 * run after the state is stored; their failures are logged, never the job's.
 */
export class JobNotifier {
  private readonly logger = new Logger('JobNotifier');
  constructor(
    private readonly store: JobStore,
    private readonly listeners: JobFinishedListener[] = [],
  ) {}

  /**
   * The same listeners, reading the finished job through another store: the workers'
   * (WORKER_JOB_STORE), so a job that ends while Redis is down is still announced.
   */
  readingFrom(store: JobStore): JobNotifier {
    return new JobNotifier(store, this.listeners);
  }

  onFinished(listener: JobFinishedListener): void {
    this.listeners.push(listener);
  }

  async finished(jobId: string): Promise<void> {
    if (!this.listeners.length) return;
    const job = await this.store.get(jobId).catch(() => undefined);
    if (!job || !isTerminal(job.state)) return;
    for (const listener of this.listeners) {
      await listener(job).catch((err: Error) => this.logger.warn(`job ${jobId}: finished listener failed: ${err.message}`));
    }
  }
}
