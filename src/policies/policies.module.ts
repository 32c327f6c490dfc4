import { Global, Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { REDIS } from '../jobs/redis.module.js';
import { PolicyStore } from './policy-store.js';

/** Named policies for both roles: the API stores them, admission resolves a job's `policy: "<name>"`. */
@Global()
@Module({
  providers: [{ provide: PolicyStore, inject: [REDIS], useFactory: (redis: Redis) => new PolicyStore(redis) }],
  exports: [PolicyStore],
})
export class PoliciesModule {}
