import { Logger } from '@nestjs/common';
import type { JobStore } from './job-store.js';
import { isTerminal, type JobRecord } from './job-types.js';

export type JobFinishedListener = (job: JobRecord) => Promise<void>;

const listeners: JobFinishedListener[] = [];

/**
 * Tells interested parts (webhooks) that a job reached a terminal state, whichever
 * process moved it there: a worker, or the api cancelling a queued job. Listeners
 * run after the state is stored; their failures are logged, never the job's.
 */
export class JobNotifier {
  private readonly logger = new Logger('JobNotifier');
  constructor(private readonly store: JobStore) {}

  /** Process-wide: a notifier made on another store (a worker's) calls the same listeners. */
  onFinished(listener: JobFinishedListener): void {
    listeners.push(listener);
  }

  async finished(jobId: string): Promise<void> {
    if (!listeners.length) return;
    const job = await this.store.get(jobId).catch(() => undefined);
    if (!job || !isTerminal(job.state)) return;
    for (const listener of listeners) {
      await listener(job).catch((err: Error) => this.logger.warn(`job ${jobId}: finished listener failed: ${err.message}`));
    }
  }
}
