import { Module, type DynamicModule, type Type } from '@nestjs/common';
import { EventStreamHub } from './jobs/event-stream-hub.js';
import { StreamLimits } from './jobs/stream-limits.js';
import { LoggerModule } from 'nestjs-pino';
import { stdTimeFunctions } from 'pino';
import { randomUUID } from 'node:crypto';
import { AuthGuard } from './auth/auth.guard.js';
import { Authenticator } from './auth/authenticator.js';
import { ApiKeyStore } from './auth/api-key-store.js';
import { ApiKeysController } from './api/api-keys.controller.js';
import { REDIS } from './jobs/redis.module.js';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from './config/config.module.js';
import { SystemController } from './api/system.controller.js';
import { TrivyDbController } from './api/trivy-db.controller.js';
import { JobsController } from './api/jobs.controller.js';
import { JobEventsController } from './api/job-events.controller.js';
import { ImagesController } from './api/images.controller.js';
import { SystemService } from './engines/versions/system.service.js';
import { ConfigModule } from './config/config.module.js';
import type { AppConfig } from './config/config.js';
import { REDACTED_PATHS } from './config/logger.js';
import { GrpcAuth } from './grpc/grpc-auth.js';
import { SystemGrpcController } from './grpc/system.grpc-controller.js';
import { JobsGrpcController } from './grpc/jobs.grpc-controller.js';
import { HealthModule } from './health/health.module.js';
import { RedisModule } from './jobs/redis.module.js';
import { JobsModule } from './jobs/jobs.module.js';
import { EnginesModule } from './engines/engines.module.js';
import { ContextsModule } from './contexts/contexts.module.js';
import { ContextsController } from './api/contexts.controller.js';
import { ArtifactsController } from './api/artifacts.controller.js';
import { SigningKeysController } from './api/signing-keys.controller.js';
import { WorkersModule } from './workers/workers.module.js';
import { SecretsModule } from './secrets/secrets.module.js';
import { PoliciesModule } from './policies/policies.module.js';
import { SecretsController } from './api/secrets.controller.js';
import { CatalogueModule } from './catalogue/catalogue.module.js';
import { RescanModule } from './catalogue/rescan.module.js';
import { ReconcilerModule } from './jobs/reconciler.module.js';
import { ImagesCatalogueController } from './api/images-catalogue.controller.js';
import { ExceptionsController } from './api/exceptions.controller.js';
import { ExceptionsModule } from './exceptions/exceptions.module.js';
import { PoliciesController } from './api/policies.controller.js';
import { WebhooksModule } from './webhooks/webhooks.module.js';
import { WebhookSecretController } from './api/webhook-secret.controller.js';
import { JobDeliveriesController } from './api/job-deliveries.controller.js';
import { WebhookEndpointController } from './api/webhook-endpoint.controller.js';
import { WebhookDeliveriesController } from './api/webhook-deliveries.controller.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { DashboardAuth } from './ui/dashboard-auth.js';
import { UiJobsController } from './ui/ui-jobs.controller.js';
import { UiPagesController } from './ui/ui-pages.controller.js';
import { AdmissionService } from './admission/admission.service.js';

/** Which parts of stevedore this process runs: `serve` is api + worker in one. */
export interface Roles {
  api: boolean;
  worker: boolean;
}

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, roles: Roles): DynamicModule {
    const imports: (Type | DynamicModule)[] = [
      ConfigModule.forRoot(config),
      LoggerModule.forRoot({
        pinoHttp: {
          level: config.logLevel,
          base: { service: 'stevedore' },
          timestamp: stdTimeFunctions.isoTime,
          redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
          // bootstrap's Fastify genReqId has already set a sane x-request-id.
          genReqId: (req) => String(req.headers['x-request-id'] ?? randomUUID()),
          // Request lines come from a Fastify onResponse hook (bootstrap.ts), which sees
          // every route; this middleware is only the Nest logger's request context.
          autoLogging: false,
        },
      }),
      RedisModule,
      JobsModule,
      EnginesModule,
      ContextsModule,
      SecretsModule,
      CatalogueModule,
      ExceptionsModule,
      PoliciesModule,
      WebhooksModule.forRoot({ worker: roles.worker }),
      MetricsModule,
    ];
    if (roles.api) imports.push(HealthModule.forRoot({ worker: roles.worker }));
    if (roles.worker) imports.push(WorkersModule, RescanModule, ReconcilerModule);
    return {
      module: AppModule,
      imports,
      controllers: roles.api
        ? [
            MetricsController,
            SystemController,
            TrivyDbController,
            JobsController,
            JobEventsController,
            ImagesController,
            ImagesCatalogueController,
            ContextsController,
            ArtifactsController,
            SigningKeysController,
            ApiKeysController,
            SecretsController,
            ExceptionsController,
            PoliciesController,
            WebhookSecretController,
            JobDeliveriesController,
            WebhookEndpointController,
            WebhookDeliveriesController,
            SystemGrpcController,
            JobsGrpcController,
            UiPagesController,
            UiJobsController,
          ]
        : [],
      providers: roles.api
        ? [
            SystemService,
            AdmissionService,
            {
              provide: ApiKeyStore,
              inject: [REDIS, APP_CONFIG],
              useFactory: (r: Redis, c: AppConfig) => new ApiKeyStore(r, c.tenancy.apiKeyRateLimit),
            },
            // Live event streams: one shared blocking reader, and caps per key and tenant.
            { provide: EventStreamHub, inject: [REDIS], useFactory: (r: Redis) => new EventStreamHub(r) },
            { provide: StreamLimits, inject: [APP_CONFIG], useFactory: (c: AppConfig) => new StreamLimits(c.streams) },
            Authenticator,
            AuthGuard,
            GrpcAuth,
            DashboardAuth,
          ]
        : [],
    };
  }
}
