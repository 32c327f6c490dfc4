import { Global, Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { REDIS } from '../jobs/redis.module.js';
import { SecretCipher } from './secret-cipher.js';
import { TenantSecrets } from './tenant-secrets.js';

/**
 * Tenant secrets for both roles: the API stores them, the build worker opens them.
 * Without a secrets key (e.g. an app made only to write openapi.yaml) the store still
 * exists and refuses to seal or open anything.
 */
@Global()
@Module({
  providers: [
    {
      provide: TenantSecrets,
      inject: [REDIS, APP_CONFIG],
      useFactory: (redis: Redis, config: AppConfig) =>
        new TenantSecrets(redis, config.secretsKey ? new SecretCipher(config.secretsKey) : undefined),
    },
  ],
  exports: [TenantSecrets],
})
export class SecretsModule {}
