import { Inject, Logger, Module, type BeforeApplicationShutdown, type DynamicModule, type OnModuleInit } from '@nestjs/common';
import { Worker, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { BULL_CONNECTION, WORKER_JOB_STORE } from '../jobs/jobs.module.js';
import { JobNotifier } from '../jobs/job-notifier.js';
import { JobStore } from '../jobs/job-store.js';
import { QUEUE_PREFIX } from '../jobs/queues.js';
import { REDIS } from '../jobs/redis.module.js';
import { SecretCipher } from '../secrets/secret-cipher.js';
import { DeliveryLog, TenantEventDeliveryLog } from './delivery-log.js';
import { TenantEventPublisher } from './tenant-event-publisher.js';
import { TenantEventStore } from './tenant-event-store.js';
import { TENANT_EVENTS } from './tenant-events.js';
import { WebhookEndpoints } from './webhook-endpoints.js';
import { throttledWarning } from '../jobs/throttled-warning.js';
import { WebhookSecrets } from './signing-secrets.js';
import {
  createDeliveryProcessor,
  WEBHOOK_QUEUE,
  WebhookDispatcher,
  webhookQueue,
  type DeliveryPayload,
  type WebhookSettings,
} from './webhook-dispatcher.js';

const WEBHOOK_QUEUE_TOKEN = Symbol('WEBHOOK_QUEUE');
const settingsOf = (c: AppConfig): WebhookSettings => ({
  attempts: c.webhooks.attempts,
  retryBaseMs: c.webhooks.retryBaseMs,
  timeoutMs: c.webhooks.timeoutMs,
  allowedHosts: c.webhooks.allowedHosts,
});

/**
 * Signed job webhooks and tenant events: every process enqueues deliveries for the jobs it
 * finishes and the tenant events it publishes (TENANT_EVENTS); the worker role runs the
 * delivery queue.
 */
@Module({})
export class WebhooksModule implements OnModuleInit, BeforeApplicationShutdown {
  private readonly logger = new Logger('Webhooks');
  private worker?: Worker<DeliveryPayload>;

  static forRoot(roles: { worker: boolean }): DynamicModule {
    return {
      module: WebhooksModule,
      global: true,
      providers: [
        { provide: 'WEBHOOK_ROLES', useValue: roles },
        // Enqueued over the connection that waits out a Redis outage (like the workers' job
        // state writes): a job that ends while Redis is down still gets its webhook.
        { provide: WEBHOOK_QUEUE_TOKEN, inject: [BULL_CONNECTION], useFactory: (r: Redis) => webhookQueue(r) },
        {
          provide: WebhookSecrets,
          inject: [REDIS, APP_CONFIG],
          useFactory: (r: Redis, c: AppConfig) => new WebhookSecrets(r, c.secretsKey ? new SecretCipher(c.secretsKey) : undefined),
        },
        {
          provide: DeliveryLog,
          inject: [REDIS, APP_CONFIG],
          useFactory: (r: Redis, c: AppConfig) => new DeliveryLog(r, c.jobRetentionSeconds),
        },
        {
          provide: WebhookDispatcher,
          inject: [WEBHOOK_QUEUE_TOKEN, APP_CONFIG],
          useFactory: (q: Queue<DeliveryPayload>, c: AppConfig) => new WebhookDispatcher(q, settingsOf(c)),
        },
        { provide: WebhookEndpoints, inject: [REDIS], useFactory: (r: Redis) => new WebhookEndpoints(r) },
        {
          provide: TenantEventStore,
          inject: [REDIS, APP_CONFIG],
          useFactory: (r: Redis, c: AppConfig) => new TenantEventStore(r, c.jobRetentionSeconds),
        },
        {
          provide: TenantEventDeliveryLog,
          inject: [REDIS, APP_CONFIG],
          useFactory: (r: Redis, c: AppConfig) => new TenantEventDeliveryLog(r, c.jobRetentionSeconds),
        },
        // Producers are mostly workers: like job webhooks, their events wait out a Redis outage.
        {
          provide: TENANT_EVENTS,
          inject: [BULL_CONNECTION, APP_CONFIG, WebhookDispatcher],
          useFactory: (r: Redis, c: AppConfig, d: WebhookDispatcher) =>
            new TenantEventPublisher(new WebhookEndpoints(r), new TenantEventStore(r, c.jobRetentionSeconds), d),
        },
      ],
      exports: [WebhookSecrets, DeliveryLog, WebhookDispatcher, WebhookEndpoints, TenantEventStore, TenantEventDeliveryLog, TENANT_EVENTS],
    };
  }

  constructor(
    @Inject('WEBHOOK_ROLES') private readonly roles: { worker: boolean },
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(BULL_CONNECTION) private readonly connection: Redis,
    @Inject(WEBHOOK_QUEUE_TOKEN) private readonly queue: Queue<DeliveryPayload>,
    @Inject(WORKER_JOB_STORE) private readonly workerStore: JobStore,
    private readonly notifier: JobNotifier,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  onModuleInit(): void {
    this.notifier.onFinished((job) => this.dispatcher.jobFinished(job));
    if (!this.roles.worker) return;
    // The sender's reads and log writes wait out a Redis outage too, instead of failing the
    // attempt (and using up one of its retries) over a blip.
    const deps = {
      store: this.workerStore,
      secrets: new WebhookSecrets(this.connection, this.config.secretsKey ? new SecretCipher(this.config.secretsKey) : undefined),
      log: new DeliveryLog(this.connection, this.config.jobRetentionSeconds),
      settings: settingsOf(this.config),
      events: new TenantEventStore(this.connection, this.config.jobRetentionSeconds),
      endpoints: new WebhookEndpoints(this.connection),
      eventLog: new TenantEventDeliveryLog(this.connection, this.config.jobRetentionSeconds),
    };
    this.worker = new Worker<DeliveryPayload>(WEBHOOK_QUEUE, createDeliveryProcessor(deps), {
      connection: this.connection,
      prefix: QUEUE_PREFIX,
      concurrency: 8,
    });
    const warn = throttledWarning((m) => this.logger.warn(m));
    this.worker.on('error', (err) => warn(`webhook worker: ${err.message}`));
  }

  async beforeApplicationShutdown(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}
