import type { Logger } from '@nestjs/common';
import { Counter } from 'prom-client';
import type { JobRecord } from '../jobs/job-types.js';
import { registry } from '../metrics/metrics.js';
import type { CatalogueStore } from './catalogue-store.js';
import { catalogueUpdates } from './from-job.js';

export const catalogueWrites = new Counter({
  name: 'stevedore_catalogue_writes_total',
  help: 'Image catalogue updates from finished jobs by outcome (ok, failed). A failed one is logged; the job is unaffected.',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

/** How long one job's catalogue writes may take before they are given up (Redis away). */
const WRITE_TIMEOUT_MS = 5_000;

export type FinishedJob = Pick<JobRecord, 'id' | 'tenant' | 'action' | 'state' | 'request' | 'result' | 'error' | 'finished_at'>;

/**
 * What the job runner calls once a job has finished: the job's catalogue updates
 * (from-job.ts), written to the store. Never throws and never waits longer than
 * WRITE_TIMEOUT_MS: the catalogue is a record of jobs, not a step of them, so a failed
 * write is logged and counted (stevedore_catalogue_writes_total{outcome="failed"}), and
 * the job's state stays what it is.
 */
export class CatalogueRecorder {
  constructor(
    private readonly store: Pick<CatalogueStore, 'apply'>,
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly timeoutMs = WRITE_TIMEOUT_MS,
  ) {}

  async record(job: FinishedJob): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const updates = catalogueUpdates(job);
      if (!updates.length) return;
      const writes = (async () => {
        for (const update of updates) await this.store.apply(update);
      })();
      writes.catch(() => undefined); // a write that ends after the timeout is already counted
      await Promise.race([
        writes,
        new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs))),
      ]);
      catalogueWrites.inc({ outcome: 'ok' }, updates.length);
    } catch (err) {
      catalogueWrites.inc({ outcome: 'failed' });
      this.logger.warn(`catalogue: could not record job ${job.id} (${job.action}): ${(err as Error)?.message ?? String(err)}`);
    } finally {
      clearTimeout(timer);
    }
  }
}
