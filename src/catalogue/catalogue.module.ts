import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ExceptionStore } from '../exceptions/exception-store.js';
import { ArtifactStore } from '../jobs/artifact-store.js';
import { REDIS } from '../jobs/redis.module.js';
import { PolicyStore } from '../policies/policy-store.js';
import { CatalogueRecorder } from './catalogue-recorder.js';
import { CatalogueStore } from './catalogue-store.js';
import { ReportReader } from './report-reader.js';
import { VerdictService } from './verdict-service.js';

/**
 * The image catalogue for both roles: the API reads it and answers verdicts, the job
 * runner records finished jobs into it, and sign and push jobs with a `policy` ask it
 * for the verdict of the digest they are about to sign or copy.
 */
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
    { provide: ReportReader, useFactory: () => new ReportReader() },
    {
      provide: VerdictService,
      inject: [CatalogueStore, PolicyStore, ExceptionStore, ArtifactStore, ReportReader],
      useFactory: (
        catalogue: CatalogueStore,
        policies: PolicyStore,
        exceptions: ExceptionStore,
        artifacts: ArtifactStore,
        reports: ReportReader,
      ) => new VerdictService({ catalogue, policies, exceptions, artifacts, reports }),
    },
  ],
  exports: [CatalogueStore, CatalogueRecorder, VerdictService],
})
export class CatalogueModule implements OnApplicationShutdown {
  constructor(@Inject(ReportReader) private readonly reports: ReportReader) {}

  /** The report parse thread, if one is running, ends with the application. */
  async onApplicationShutdown(): Promise<void> {
    await this.reports.close();
  }
}
