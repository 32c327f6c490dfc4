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

/** Workers' connection (BullMQ duplicates it for blocking reads). */
export const BULL_CONNECTION = Symbol('BULL_CONNECTION');

/** Job records, event logs, queues and cancellation: what api and worker share. */
@Global()
@Module({
  providers: [
    { provide: BULL_CONNECTION, inject: [APP_CONFIG], useFactory: (c: AppConfig) => bullConnection(c.redisUrl!) },
    { provide: JobStore, inject: [REDIS, APP_CONFIG], useFactory: (r: Redis, c: AppConfig) => new JobStore(r, c.jobRetentionSeconds) },
    // Queues share the job store's connection: a submit's record and queue add go
    // out back to back, in order (see JobService.submit).
    { provide: JobQueues, inject: [REDIS], useFactory: (connection: Redis) => new JobQueues(connection) },
    { provide: CancelBus, inject: [REDIS], useFactory: (r: Redis) => new CancelBus(r) },
    { provide: ArtifactStore, inject: [APP_CONFIG], useFactory: (c: AppConfig) => new ArtifactStore(join(c.stateDir, 'artifacts')) },
    { provide: FairScheduler, inject: [REDIS, APP_CONFIG], useFactory: (r: Redis, c: AppConfig) => new FairScheduler(r, c.tenancy.maxConcurrentJobs) },
    { provide: JobNotifier, inject: [JobStore], useFactory: (s: JobStore) => new JobNotifier(s) },
    {
      provide: JobService,
      inject: [REDIS, JobStore, JobQueues, CancelBus, APP_CONFIG, JobNotifier],
      useFactory: (r: Redis, s: JobStore, q: JobQueues, b: CancelBus, c: AppConfig, n: JobNotifier) => new JobService(r, s, q, b, c.jobRetentionSeconds, n),
    },
  ],
  exports: [JobStore, JobQueues, CancelBus, JobService, ArtifactStore, BULL_CONNECTION, FairScheduler, JobNotifier],
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
