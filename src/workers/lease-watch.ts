/**
 * Knows, per running job, when this worker last renewed its BullMQ lock, and stops a job
 * whose lock it can no longer vouch for.
 *
 * Why: a job's lock is a lease. When Redis is unreachable (down, frozen, partitioned) the
 * renewals hang, the lock lapses inside Redis, and once Redis answers again another
 * worker's stalled check hands the job to a second worker. A first worker that carried on
 * meanwhile would push, sign and notify a second time. So a job stops as soon as either
 * - BullMQ reports its renewal failed (the lock is gone or held by another token), or
 * - no renewal has succeeded for `stopAfterMs` (a fraction of the lock's duration): past
 *   that point the lock may have lapsed without this process being able to know it.
 * The job runner then winds the work down and writes nothing more (its fencing token no
 * longer matches once another run starts); see job-runner.ts.
 */
export class LeaseWatch {
  private readonly jobs = new Map<string, { renewedAt: number; lost: (why: string) => void }>();
  private timer?: NodeJS.Timeout;

  /** `lockMs`: BullMQ's lockDuration. Renewals come every lockMs/4 to lockMs/2 while healthy. */
  constructor(
    lockMs: number,
    private readonly stopAfterMs = Math.round(lockMs * 0.75),
    private readonly checkEveryMs = Math.max(100, Math.min(1_000, Math.round(lockMs / 20))),
  ) {}

  /** Watches a job from its start (the lock was just taken). Returns the unwatch. */
  watch(jobId: string, lost: (why: string) => void): () => void {
    this.jobs.set(jobId, { renewedAt: Date.now(), lost });
    this.timer ??= setInterval(() => this.check(), this.checkEveryMs).unref();
    return () => {
      this.jobs.delete(jobId);
      if (!this.jobs.size && this.timer) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    };
  }

  /** BullMQ's `locksRenewed`. */
  renewed(jobIds: readonly string[]): void {
    const now = Date.now();
    for (const id of jobIds) {
      const job = this.jobs.get(id);
      if (job) job.renewedAt = now;
    }
  }

  /** BullMQ's `lockRenewalFailed`: the lock is gone or another worker's. */
  failed(jobIds: readonly string[]): void {
    for (const id of jobIds) this.lose(id, 'its lock could not be renewed (another worker may hold it)');
  }

  private check(): void {
    const now = Date.now();
    for (const [id, job] of this.jobs)
      if (now - job.renewedAt > this.stopAfterMs)
        this.lose(id, `its lock was not renewed for ${Math.round((now - job.renewedAt) / 1000)} s (Redis unreachable)`);
  }

  private lose(id: string, why: string): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    job.lost(why);
  }
}
