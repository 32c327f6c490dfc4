import { Inject, Logger, Module, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { JobReconciler } from './job-reconciler.js';
import { JobNotifier } from './job-notifier.js';
import { JobStore } from './job-store.js';
import { JobQueues } from './queues.js';
import { REDIS } from './redis.module.js';

/**
 * The worker role's reconciler (job-reconciler.ts): started with the app, stopped before
 * the Redis connections close. It uses the API's fail-fast connection: a pass that meets a
 * Redis outage fails at once and the next one tries again.
 */
@Module({
  providers: [
    {
      provide: JobReconciler,
      inject: [REDIS, JobStore, JobQueues, JobNotifier, APP_CONFIG],
      useFactory: (redis: Redis, store: JobStore, queues: JobQueues, notifier: JobNotifier, config: AppConfig) =>
        new JobReconciler(redis, store, queues, notifier, new Logger('Reconciler'), {
          ...config.reconcile,
          lockMs: config.jobLockMs,
        }),
    },
  ],
})
export class ReconcilerModule implements OnApplicationBootstrap, BeforeApplicationShutdown {
  constructor(@Inject(JobReconciler) private readonly reconciler: JobReconciler) {}

  onApplicationBootstrap(): void {
    this.reconciler.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.reconciler.stop();
  }
}
