import { Logger } from '@nestjs/common';
import type { JobStore } from './job-store.js';
import { isTerminal, type JobRecord } from './job.types.js';

export type JobFinishedListener = (job: JobRecord) => Promise<void>;

/**
 * Tells interested parts (webhooks) that a job reached a terminal state, whichever
 * process moved it there: a worker, or the api cancelling a queued job. Listeners
 * run after the state is stored; their failures are logged, never the job's.
 */
export class JobNotifier {
  private readonly logger = new Logger('JobNotifier');
  private readonly listeners: JobFinishedListener[] = [];

  constructor(private readonly store: JobStore) {}

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
