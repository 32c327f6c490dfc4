import { Inject, Logger, Module, Optional, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ContextStore } from '../contexts/context-store.js';
import { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { CosignClient } from '../engines/cosign/cosign-client.js';
import { SigningKeys } from '../engines/cosign/signing-keys.js';
import { ImageInspector } from '../engines/registry/image-inspector.js';
import { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { TrivyClient } from '../engines/trivy/trivy-client.js';
import { ACTION_TABLE } from '../jobs/actions.js';
import { ArtifactStore } from '../jobs/artifact-store.js';
import { CancelBus } from '../jobs/cancel-bus.js';
import { FairScheduler } from '../jobs/fair-scheduler.js';
import { JobNotifier } from '../jobs/job-notifier.js';
import { JobStore } from '../jobs/job-store.js';
import { BULL_CONNECTION, WORKER_JOB_STORE } from '../jobs/jobs.module.js';
import { backgroundQueueName, hasBackgroundLane, QUEUE_PREFIX, queueName, type QueuePayload } from '../jobs/queues.js';
import { REDIS } from '../jobs/redis.module.js';
import { throttledWarning } from '../jobs/throttled-warning.js';
import { TenantSecrets } from '../secrets/tenant-secrets.js';
import { CatalogueRecorder } from '../catalogue/catalogue-recorder.js';
import { CatalogueStore } from '../catalogue/catalogue-store.js';
import { ExceptionStore } from '../exceptions/exception-store.js';
import { TENANT_EVENTS, type TenantEvents } from '../webhooks/tenant-events.js';
import { VerdictService } from '../catalogue/verdict-service.js';
import { createJobRunner, MAX_STALLED_COUNT, type RunnerDeps } from './job-runner.js';
import type { AnyProcessor } from './processor.js';
import { LeaseWatch } from './lease-watch.js';
import { createProcessors } from './processors.js';

/**
 * One BullMQ worker per available action, each with its own concurrency. On
 * shutdown nothing new starts; running jobs get STEVEDORE_SHUTDOWN_GRACE_SECONDS to
 * finish, then are handed back to the queue (another worker starts them again).
 */
@Module({})
export class WorkersModule implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger('Workers');
  private readonly shutdown = new AbortController();
  private readonly workers: Worker<QueuePayload>[] = [];
  private readonly processors: AnyProcessor[];
  private readonly runnerDeps: Pick<RunnerDeps, 'store' | 'fair' | 'notifier' | 'recorder' | 'leases'>;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BULL_CONNECTION) private readonly connection: Redis,
    // The runner's own Redis writes (state, events, slots) go over the workers'
    // connection, which waits out a Redis outage (see WORKER_JOB_STORE).
    @Inject(WORKER_JOB_STORE) store: JobStore,
    notifier: JobNotifier,
    private readonly cancelBus: CancelBus,
    inspector: ImageInspector,
    registries: RegistryResolver,
    buildkit: BuildkitClient,
    contexts: ContextStore,
    trivy: TrivyClient,
    cosign: CosignClient,
    keys: SigningKeys,
    artifacts: ArtifactStore,
    @Inject(REDIS) redis: Redis,
    tenantSecrets: TenantSecrets,
    recorder: CatalogueRecorder,
    exceptions: ExceptionStore,
    @Optional() @Inject(TENANT_EVENTS) events: TenantEvents | null,
    verdicts: VerdictService,
    catalogue: CatalogueStore,
  ) {
    this.runnerDeps = {
      store,
      fair: new FairScheduler(connection, config.tenancy.maxConcurrentJobs),
      notifier: notifier.readingFrom(store),
      recorder,
      leases: new LeaseWatch(config.jobLockMs),
    };
    this.processors = createProcessors({
      config,
      inspector,
      registries,
      buildkit,
      contexts,
      trivy,
      cosign,
      keys,
      artifacts,
      redis,
      tenantSecrets,
      exceptions,
      ...(events ? { events } : {}),
      verdicts,
      catalogue,
    });
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const processor of this.processors) {
      const concurrency = this.config.concurrency[processor.action] ?? ACTION_TABLE[processor.action].concurrency;
      const runner = createJobRunner(processor, { ...this.runnerDeps, logger: this.logger, shutdown: this.shutdown.signal });
      const worker = new Worker<QueuePayload>(queueName(processor.action), runner, {
        connection: this.connection,
        prefix: QUEUE_PREFIX,
        concurrency,
        // A dead worker's jobs are found by their lapsed lock; the job runner decides
        // whether they run again or fail with WORKER_LOST.
        lockDuration: this.config.jobLockMs,
        stalledInterval: this.config.jobLockMs,
        maxStalledCount: MAX_STALLED_COUNT,
      });
      const warn = throttledWarning((m) => this.logger.warn(m));
      worker.on('error', (err) => warn(`worker ${processor.action}: ${err.message}`));
      this.watchLeases(worker);
      this.workers.push(worker);
      // The background lane (rescans): the same runner and processor, its own small pool.
      if (hasBackgroundLane(processor.action)) {
        const background = new Worker<QueuePayload>(backgroundQueueName(processor.action), runner, {
          connection: this.connection,
          prefix: QUEUE_PREFIX,
          concurrency: this.config.rescan.concurrency,
          lockDuration: this.config.jobLockMs,
          stalledInterval: this.config.jobLockMs,
          maxStalledCount: MAX_STALLED_COUNT,
        });
        background.on('error', (err) => warn(`worker ${processor.action} (background): ${err.message}`));
        this.watchLeases(background);
        this.workers.push(background);
      }
    }
    await this.cancelBus.subscribe((jobId) => {
      for (const worker of this.workers) worker.cancelJob(jobId, 'cancelled');
    });
    await Promise.all(this.workers.map((w) => w.waitUntilReady()));
    this.logger.log(`workers ready: ${this.processors.map((p) => p.action).join(', ')}`);
  }

  /** BullMQ's lock renewals tell the lease watch which jobs this worker still holds. */
  private watchLeases(worker: Worker<QueuePayload>): void {
    const leases = this.runnerDeps.leases!;
    worker.on('locksRenewed', ({ jobIds }) => leases.renewed(jobIds));
    worker.on('lockRenewalFailed', (jobIds) => leases.failed(jobIds));
  }

  /** Before Redis connections close (onApplicationShutdown): the hand-back needs Redis. */
  async beforeApplicationShutdown(): Promise<void> {
    const closing = Promise.all(this.workers.map((w) => w.close()));
    const grace = setTimeout(() => {
      this.logger.warn(
        `shutdown: running jobs did not finish within ${this.config.shutdownGraceMs / 1000} s; handing them back to the queue`,
      );
      this.shutdown.abort();
    }, this.config.shutdownGraceMs);
    try {
      await closing;
    } finally {
      clearTimeout(grace);
      await this.cancelBus.close();
    }
  }
}
