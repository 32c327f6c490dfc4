import { Inject, Logger, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { TrivyClient } from '../engines/trivy/trivy-client.js';
import { JobService } from '../jobs/job.service.js';
import { REDIS } from '../jobs/redis.module.js';
import { CatalogueStore } from './catalogue-store.js';
import { RescanScheduler } from './rescan-scheduler.js';

/** The worker role's rescan scheduler (rescan-scheduler.ts): started with the app, stopped before Redis closes. */
@Module({
  providers: [
    {
      provide: RescanScheduler,
      inject: [REDIS, CatalogueStore, JobService, TrivyClient, APP_CONFIG],
      useFactory: (redis: Redis, catalogue: CatalogueStore, jobs: JobService, trivy: TrivyClient, config: AppConfig) =>
        new RescanScheduler(redis, catalogue, jobs, { updatedAt: () => trivy.dbUpdatedAt() }, new Logger('Rescans'), {
          intervalMs: config.rescan.intervalMs,
        }),
    },
  ],
  exports: [RescanScheduler],
})
export class RescanModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(RescanScheduler) private readonly scheduler: RescanScheduler) {}

  async onApplicationBootstrap(): Promise<void> {
    await this.scheduler.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.scheduler.stop();
  }
}
