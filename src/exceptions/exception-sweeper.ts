import type { TenantEvents } from '../webhooks/tenant-events.js';
import type { ExceptionStore } from './exception-store.js';

export interface SweeperLogger {
  warn(message: string): void;
}

/**
 * Announces expiries: every tick takes at most `batch` exceptions whose date has passed,
 * claims each (exactly one process wins an entry: ExceptionStore.claim) and publishes
 * `exception.expired` to the tenant's endpoint. Gates need no sweep to stop applying an
 * exception (they compare with now); this only sends the event.
 */
export class ExceptionSweeper {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly store: ExceptionStore,
    private readonly events: TenantEvents,
    private readonly options: { intervalMs: number; batch: number; logger?: SweeperLogger },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), this.options.intervalMs);
    // A timer alone never keeps the process (or a test) alive.
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One tick, never two at once; failures are logged, the entries stay due. */
  private async tick(): Promise<void> {
    if (this.running) return;
    this.running = this.sweep().catch((err: unknown) => {
      this.options.logger?.warn(`exception sweep: ${(err as Error).message}`);
      return 0;
    });
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  /** Announces up to `batch` expiries due at `now`; returns how many were published. */
  async sweep(now = new Date()): Promise<number> {
    let published = 0;
    for (const due of await this.store.due(now, this.options.batch)) {
      if (!(await this.store.claim(due.tenant, due.id))) continue;
      const record = await this.store.get(due.tenant, due.id);
      // Deleted between the read and the claim: nothing to announce.
      if (!record) continue;
      try {
        await this.events.publish(due.tenant, 'exception.expired', {
          exception_id: record.id,
          vulnerability_id: record.vulnerability_id,
          scope: record.scope,
          reason: record.reason,
          owner: record.owner,
          expires: record.expires,
        });
      } catch (err) {
        await this.store.unclaim(due.tenant, due.id, due.expiresMs);
        throw err;
      }
      await this.store.markNotified(due.tenant, due.id, now);
      published++;
    }
    return published;
  }
}

/** Used when no TenantEvents implementation is wired (e.g. before the tenant endpoint exists). */
export const NO_TENANT_EVENTS: TenantEvents = { publish: () => Promise.resolve() };
