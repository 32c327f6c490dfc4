import { Inject, Logger, Module, type OnApplicationBootstrap } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS } from '../jobs/redis.module.js';

/**
 * Home of the per-action processors (build, scan, sign, ...), one file each, added by
 * the job-engine issue. For now the worker role only proves it can reach Redis.
 */
@Module({})
export class WorkersModule implements OnApplicationBootstrap {
  private readonly logger = new Logger('Workers');
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  async onApplicationBootstrap(): Promise<void> {
    if (this.redis.status === 'wait') await this.redis.connect();
    await this.redis.ping();
    this.logger.log('worker connected to redis; no job processors are registered yet');
  }
}
