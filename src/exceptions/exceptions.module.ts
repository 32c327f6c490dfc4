import { Global, Inject, Logger, Module, Optional, type BeforeApplicationShutdown, type OnApplicationBootstrap } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { REDIS } from '../jobs/redis.module.js';
import { TENANT_EVENTS, type TenantEvents } from '../webhooks/tenant-events.js';
import { ExceptionStore } from './exception-store.js';
import { ExceptionSweeper, NO_TENANT_EVENTS } from './exception-sweeper.js';

/** Expiries announced per sweep and process: a backlog drains over several ticks, never in one burst. */
const SWEEP_BATCH = 100;

/**
 * Exceptions for both roles: the API stores them, the scan stage applies them, and every
 * process sweeps expiries (a claim in Redis makes each announcement happen once).
 * Without a TenantEvents provider the sweep still marks expiries, and sends nothing.
 */
@Global()
@Module({
  providers: [
    {
      provide: ExceptionStore,
      inject: [REDIS, APP_CONFIG],
      useFactory: (redis: Redis, config: AppConfig) => new ExceptionStore(redis, config.exceptions.maxPerTenant),
    },
  ],
  exports: [ExceptionStore],
})
export class ExceptionsModule implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly sweeper: ExceptionSweeper;

  constructor(
    store: ExceptionStore,
    @Inject(APP_CONFIG) config: AppConfig,
    @Optional() @Inject(TENANT_EVENTS) events: TenantEvents | null,
  ) {
    const logger = new Logger('Exceptions');
    this.sweeper = new ExceptionSweeper(store, events ?? NO_TENANT_EVENTS, {
      intervalMs: config.exceptions.sweepMs,
      batch: SWEEP_BATCH,
      logger: { warn: (m) => logger.warn(m) },
    });
  }

  onApplicationBootstrap(): void {
    this.sweeper.start();
  }

  /** Before Redis closes: a sweep in flight finishes first. */
  async beforeApplicationShutdown(): Promise<void> {
    await this.sweeper.stop();
  }
}
