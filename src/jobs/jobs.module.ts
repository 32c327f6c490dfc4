import { Global, Inject, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { CancelBus } from './cancel-bus.js';
import { JobStore } from './job-store.js';
import { JobService } from './job.service.js';
import { bullConnection, JobQueues } from './queues.js';
import { REDIS } from './redis.module.js';
import { ArtifactStore } from './artifact-store.js';
import { join } from 'node:path';
import { FairScheduler } from './fair-scheduler.js';
import { JobNotifier } from './job-notifier.js';
import { StateChanges } from './state-changes.js';

/** Workers' connection (BullMQ duplicates it for blocking reads). */
export const BULL_CONNECTION = Symbol('BULL_CONNECTION');
/**
 * The job store the workers' runner writes through (state, events): over BULL_CONNECTION,
 * which waits out a Redis outage instead of failing fast like the API's. A job that ends
 * while Redis is down records its state when Redis is back, rather than erroring and
 * leaving its record `running`.
 */
export const WORKER_JOB_STORE = Symbol('WORKER_JOB_STORE');

/** Job records, event logs, queues and cancellation: what api and worker share. */
@Global()
@Module({
  providers: [
    { provide: BULL_CONNECTION, inject: [APP_CONFIG], useFactory: (c: AppConfig) => bullConnection(c.redisUrl!) },
    StateChanges,
    {
      provide: JobStore,
      inject: [REDIS, APP_CONFIG, StateChanges],
      useFactory: (r: Redis, c: AppConfig, s: StateChanges) => new JobStore(r, c.jobRetentionSeconds, s),
    },
    {
      provide: WORKER_JOB_STORE,
      inject: [BULL_CONNECTION, APP_CONFIG, StateChanges],
      useFactory: (r: Redis, c: AppConfig, s: StateChanges) => new JobStore(r, c.jobRetentionSeconds, s),
    },
    // Queues share the job store's connection: a submit's record and queue add go
    // out back to back, in order (see JobService.submit).
    { provide: JobQueues, inject: [REDIS], useFactory: (connection: Redis) => new JobQueues(connection) },
    { provide: CancelBus, inject: [REDIS], useFactory: (r: Redis) => new CancelBus(r) },
    { provide: ArtifactStore, inject: [APP_CONFIG], useFactory: (c: AppConfig) => new ArtifactStore(join(c.stateDir, 'artifacts')) },
    {
      provide: FairScheduler,
      inject: [REDIS, APP_CONFIG],
      useFactory: (r: Redis, c: AppConfig) => new FairScheduler(r, c.tenancy.maxConcurrentJobs),
    },
    { provide: JobNotifier, inject: [JobStore], useFactory: (s: JobStore) => new JobNotifier(s) },
    {
      provide: JobService,
      inject: [REDIS, JobStore, JobQueues, CancelBus, APP_CONFIG, JobNotifier],
      useFactory: (r: Redis, s: JobStore, q: JobQueues, b: CancelBus, c: AppConfig, n: JobNotifier) =>
        new JobService(r, s, q, b, c.jobRetentionSeconds, n),
    },
  ],
  exports: [
    StateChanges,
    JobStore,
    WORKER_JOB_STORE,
    JobQueues,
    CancelBus,
    JobService,
    ArtifactStore,
    BULL_CONNECTION,
    FairScheduler,
    JobNotifier,
  ],
})
export class JobsModule implements OnApplicationShutdown {
  constructor(
    private readonly queues: JobQueues,
    @Inject(BULL_CONNECTION) private readonly workerConnection: Redis,
  ) {}

  async onApplicationShutdown(): Promise<void> {
    await this.queues.close();
    this.workerConnection.disconnect();
  }
}
