import { Global, Inject, Module, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';

/** The shared (API) Redis connection: job records, queues, keys and the rest; workers write over BULL_CONNECTION. */
export const REDIS = Symbol('REDIS');

/** Time limit of one command on the shared (API) connection. */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;

@Global()
@Module({
  providers: [
    {
      provide: REDIS,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig) => {
        if (!config.redisUrl) throw new Error('REDIS_URL is required for this role');
        // lazyConnect: creating the app (e.g. to write openapi.yaml) needs no Redis.
        // No offline queue: while Redis is down calls fail fast instead of piling up.
        // A command time limit: a Redis that is up but does not answer (frozen, or a
        // network partition that leaves the connection open) fails a call in 2 s
        // (503 REDIS_UNAVAILABLE) instead of hanging it. Long blocking reads run on
        // duplicates without it (event-stream-hub.ts, cancel-bus.ts).
        const client = new Redis(config.redisUrl, {
          lazyConnect: true,
          enableOfflineQueue: false,
          maxRetriesPerRequest: 1,
          commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
          connectTimeout: 2_000,
          retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
        });
        client.on('error', () => undefined); // reported by /readyz, not as an unhandled event
        return client;
      },
    },
  ],
  exports: [REDIS],
})
export class RedisModule implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  /**
   * Connect before serving (up to 5 s): with no offline queue, a request that came
   * before the connection would fail. If Redis is down, ioredis keeps retrying and
   * /readyz says so.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (this.redis.status === 'ready') return;
    const ready = new Promise<void>((resolve) => this.redis.once('ready', () => resolve()));
    if (this.redis.status === 'wait') this.redis.connect().catch(() => undefined);
    await Promise.race([ready, new Promise((r) => setTimeout(r, 5_000).unref())]);
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
