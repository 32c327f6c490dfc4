import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { Counter } from 'prom-client';
import type { RescanOrigin } from '../jobs/job-types.js';
import type { JobService } from '../jobs/job.service.js';
import { registry } from '../metrics/metrics.js';
import type { CatalogueStore } from './catalogue-store.js';
import type { ImageRecord } from './catalogue-record.js';

export const rescansQueued = new Counter({
  name: 'stevedore_rescans_queued_total',
  help: "Rescans queued because Trivy's vulnerability DB changed.",
  registers: [registry],
});

const keys = {
  /** The DB UpdatedAt every scanned digest has been queued for. */
  done: 'stv:rescan:db',
  /** One scheduler at a time across worker processes. */
  lock: 'stv:rescan:lock',
};
/** Channel on which `PUT /v1/system/trivy-db` asks the workers to check at once. */
export const RESCAN_WAKE_CHANNEL = 'stv:rescan:wake';
/** Queueing 1 000 rescans takes seconds; the lock outlives a stuck holder only this long. */
const LOCK_SECONDS = 900;

export interface RescanSettings {
  /** How often the DB's UpdatedAt is compared (0: never, not even on wake). */
  intervalMs: number;
}

/**
 * Rescans after a vulnerability DB change. Every interval (and when woken after an
 * admin DB load) it asks Trivy's DB for its UpdatedAt; when that differs from the one
 * rescans were last queued for, it queues a rescan of every catalogued digest whose
 * latest scan used another DB: a scan job of the digest's tenant in the background lane
 * (jobs/queues.ts), carrying the previous scan and the stored SBOMs (RescanOrigin) so
 * the worker scans the SBOM instead of pulling layers and reports the diff. One
 * scheduler works at a time (a Redis lock); the Idempotency-Key per (digest, DB) means a
 * second pass after a crash never queues a digest twice.
 */
export class RescanScheduler {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly catalogue: Pick<CatalogueStore, 'scannedRecords'>,
    private readonly jobs: Pick<JobService, 'submit'>,
    private readonly db: { updatedAt(): Promise<string | undefined> },
    private readonly logger: { log(m: string): void; warn(m: string): void },
    private readonly settings: RescanSettings,
  ) {}

  async start(): Promise<void> {
    if (!this.settings.intervalMs) return;
    this.timer = setInterval(() => void this.checkQuietly(), this.settings.intervalMs);
    this.timer.unref();
    // Its own connection (a subscribed one can do nothing else), queueing while it connects.
    this.subscriber = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    this.subscriber.on('error', () => undefined); // the next interval checks anyway
    this.subscriber.on('message', () => void this.checkQuietly());
    await this.subscriber.subscribe(RESCAN_WAKE_CHANNEL);
    void this.checkQuietly();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.subscriber?.disconnect();
    await this.running?.catch(() => undefined);
  }

  /** Queues the rescans a DB change calls for; the number queued (0: no change, or another scheduler has it). */
  check(): Promise<number> {
    // A wake during a pass joins it: the pass reads the DB date when it starts.
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async checkQuietly(): Promise<void> {
    try {
      await this.check();
    } catch (err) {
      this.logger.warn(`rescans: check failed: ${(err as Error).message}`);
    }
  }

  private async pass(): Promise<number> {
    const current = await this.db.updatedAt();
    if (!current || (await this.redis.get(keys.done)) === current) return 0;
    const token = randomUUID();
    if ((await this.redis.set(keys.lock, token, 'EX', LOCK_SECONDS, 'NX')) !== 'OK') return 0;
    try {
      let queued = 0;
      for await (const { tenant, record } of this.catalogue.scannedRecords()) {
        if (record.latest_scan!.db_updated_at === current) continue;
        await this.queue(tenant, record, current);
        queued++;
      }
      await this.redis.set(keys.done, current);
      rescansQueued.inc(queued);
      if (queued) this.logger.log(`rescans: vulnerability DB ${current}: ${queued} digest(s) queued for a rescan`);
      return queued;
    } finally {
      // Only our own lock: a pass longer than LOCK_SECONDS may have lost it to another.
      if ((await this.redis.get(keys.lock)) === token) await this.redis.del(keys.lock);
    }
  }

  private async queue(tenant: string, record: ImageRecord, dbUpdatedAt: string): Promise<void> {
    const scan = record.latest_scan!;
    const origin: RescanOrigin = {
      kind: 'rescan',
      db_updated_at: dbUpdatedAt,
      previous: { job_id: scan.job_id, reports: scan.reports, db_updated_at: scan.db_updated_at, scanned_at: scan.scanned_at },
      sbom: record.sbom ? { job_id: record.sbom.job_id, platforms: record.sbom.platforms } : null,
    };
    // Pinned by digest in the repository it was first seen in; the platforms the last scan
    // covered (one named platform of an index stays that one); vulns only (secrets are in
    // the layers, which a DB change does not touch).
    const platform = scan.platforms.length === 1 ? { platform: scan.platforms[0]! } : {};
    const request = { action: 'scan' as const, image: `${record.repository}@${record.digest}`, ...platform, scanners: ['vuln' as const] };
    await this.jobs.submit(request, tenant, {
      idempotencyKey: `rescan:${record.digest}:${dbUpdatedAt}`,
      lane: 'background',
      origin,
    });
  }
}

/** Asks the workers' schedulers to check now (after an admin DB load). Never throws. */
export async function wakeRescans(redis: Redis): Promise<void> {
  await redis.publish(RESCAN_WAKE_CHANNEL, '1').catch(() => undefined);
}
