import { Global, Logger, Module } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { REDIS } from '../jobs/redis.module.js';
import { CatalogueRecorder } from './catalogue-recorder.js';
import { CatalogueStore } from './catalogue-store.js';

/** The image catalogue for both roles: the API reads it, the job runner records finished jobs into it. */
@Global()
@Module({
  providers: [
    {
      provide: CatalogueStore,
      inject: [REDIS, APP_CONFIG],
      useFactory: (redis: Redis, config: AppConfig) => new CatalogueStore(redis, config.catalogueRetentionDays),
    },
    {
      provide: CatalogueRecorder,
      inject: [CatalogueStore],
      useFactory: (store: CatalogueStore) => new CatalogueRecorder(store, new Logger('Catalogue')),
    },
  ],
  exports: [CatalogueStore, CatalogueRecorder],
})
export class CatalogueModule {}
