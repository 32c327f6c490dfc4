import { Global, Inject, Logger, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { join } from 'node:path';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ContextStore } from './context-store.js';
import { ArtifactStore } from '../jobs/artifact-store.js';
import { REDIS } from '../jobs/redis.module.js';
import type { Redis } from 'ioredis';
import { ContextOwners } from './context-owners.js';

const GC_INTERVAL_MS = 3600_000;

/**
 * Uploaded build contexts under <state dir>/contexts, shared by api and workers, and the
 * hourly sweep of what is past its time: unused contexts and expired jobs' artifacts.
 */
@Global()
@Module({
  providers: [
    {
      provide: ContextStore,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) =>
        new ContextStore({
          root: join(c.stateDir, 'contexts'),
          maxBytes: c.contextMaxBytes,
          ttlSeconds: c.contextTtlSeconds,
          maxExpandedBytes: c.contextMaxExpandedBytes,
          maxEntries: c.contextMaxEntries,
          uploadTimeoutMs: c.contextUploadTimeoutMs,
        }),
    },
    {
      provide: ContextOwners,
      inject: [REDIS, APP_CONFIG],
      useFactory: (r: Redis, c: AppConfig) => new ContextOwners(r, c.contextTtlSeconds),
    },
  ],
  exports: [ContextStore, ContextOwners],
})
export class ContextsModule implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Contexts');
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly store: ContextStore,
    private readonly artifacts: ArtifactStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    // Hourly: contexts unused for their TTL go, and half-written uploads.
    this.timer = setInterval(
      () => {
        this.store.gc().then(
          (removed) => removed && this.logger.log(`removed ${removed} unused build contexts`),
          (err: Error) => this.logger.warn(`context gc failed: ${err.message}`),
        );
        this.artifacts.gc(this.config.jobRetentionSeconds).then(
          (removed) => removed && this.logger.log(`removed the artifacts of ${removed} expired jobs`),
          (err: Error) => this.logger.warn(`artifact gc failed: ${err.message}`),
        );
      },
      Math.min(GC_INTERVAL_MS, this.config.contextTtlSeconds * 1000),
    );
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
