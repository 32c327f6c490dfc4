import { Queue, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobStore } from '../jobs/job-store.js';
import { QUEUE_PREFIX } from '../jobs/queues.js';
import type { JobRecord, TerminalState } from '../jobs/job-types.js';
import { webhookDeliveries } from '../metrics/metrics.js';
import { eventSubject, type DeliveryAttempt, type DeliveryLog } from './delivery-log.js';
import { sendWebhook } from './webhook-sender.js';
import type { WebhookSecrets } from './signing-secrets.js';
import { eventWebhookId, tenantEventBody, type TenantEventStore } from './tenant-event-store.js';
import type { WebhookEndpoints } from './webhook-endpoints.js';

export const WEBHOOK_QUEUE = 'stevedore-webhooks';

/**
 * A queued delivery holds references only: the body is built at send time from the job
 * record (to the job's callback_url) or from the stored tenant event (to the tenant's
 * endpoint). Job payloads queued before tenant events existed carry no `kind`.
 */
export type DeliveryPayload = JobDelivery | TenantEventDelivery;
interface JobDelivery {
  kind?: 'job';
  jobId: string;
  tenant: string;
  webhookId: string;
}
interface TenantEventDelivery {
  kind: 'tenant_event';
  eventId: string;
  tenant: string;
  webhookId: string;
}

export const EVENT_TYPES: Record<TerminalState, string> = {
  succeeded: 'job.succeeded',
  failed: 'job.failed',
  cancelled: 'job.cancelled',
  timed_out: 'job.timed_out',
};

export interface WebhookSettings {
  attempts: number;
  retryBaseMs: number;
  timeoutMs: number;
  allowedHosts: readonly string[];
}

/** The event's id: derived from the job, so every attempt and every redelivery carries it. */
export const webhookIdFor = (jobId: string) => `msg_${jobId}`;

/**
 * Enqueues a signed webhook for every finished job that has a callback_url, and for every
 * tenant event the tenant's endpoint subscribes to; BullMQ retries failed attempts with
 * exponential backoff and jitter (at-least-once).
 */
export class WebhookDispatcher {
  constructor(
    private readonly queue: Queue<DeliveryPayload>,
    private readonly settings: WebhookSettings,
  ) {}

  async jobFinished(job: JobRecord): Promise<void> {
    if (!job.request.callback_url) return;
    await this.enqueue(this.jobPayload(job), `wh-${job.id}`);
  }

  /** Sends the job's event again (same webhook-id), whatever happened before. */
  async redeliver(job: JobRecord): Promise<string> {
    await this.enqueue(this.jobPayload(job), `wh-${job.id}-${Date.now()}`);
    return webhookIdFor(job.id);
  }

  /** Queues a stored tenant event (TenantEventStore) for the tenant's endpoint. */
  async tenantEvent(tenant: string, eventId: string): Promise<void> {
    await this.enqueue(this.eventPayload(tenant, eventId), `te-${eventId}`);
  }

  /** Sends a tenant event again (same webhook-id and body), whatever happened before. */
  async redeliverTenantEvent(tenant: string, eventId: string): Promise<string> {
    await this.enqueue(this.eventPayload(tenant, eventId), `te-${eventId}-${Date.now()}`);
    return eventWebhookId(eventId);
  }

  private jobPayload(job: JobRecord): DeliveryPayload {
    return { kind: 'job', jobId: job.id, tenant: job.tenant, webhookId: webhookIdFor(job.id) };
  }

  private eventPayload(tenant: string, eventId: string): DeliveryPayload {
    return { kind: 'tenant_event', eventId, tenant, webhookId: eventWebhookId(eventId) };
  }

  private async enqueue(payload: DeliveryPayload, bullId: string): Promise<void> {
    await this.queue.add('deliver', payload, {
      jobId: bullId,
      attempts: this.settings.attempts,
      backoff: { type: 'exponential', delay: this.settings.retryBaseMs, jitter: 0.5 },
      removeOnComplete: true,
      removeOnFail: { age: 7 * 24 * 3600 },
    });
  }
}

/** What one attempt sends, and where its outcome is logged. */
interface Outgoing {
  url: string;
  type: string;
  body: string;
  record(entry: Omit<DeliveryAttempt, 'attempt'>): Promise<unknown>;
}

export interface DeliveryDeps {
  store: JobStore;
  secrets: WebhookSecrets;
  log: DeliveryLog;
  settings: WebhookSettings;
  /** Tenant events: the stored events, the tenants' endpoints and the events' delivery log. */
  events: TenantEventStore;
  endpoints: WebhookEndpoints;
  eventLog: DeliveryLog;
}

async function jobOutgoing(deps: DeliveryDeps, data: JobDelivery): Promise<Outgoing> {
  const { jobId, tenant } = data;
  const job = await deps.store.get(jobId);
  if (!job?.request.callback_url || job.tenant !== tenant) throw new UnrecoverableError('the job or its callback is gone');
  const type = EVENT_TYPES[job.state as TerminalState];
  if (!type) throw new UnrecoverableError(`job ${jobId} is not finished`);
  const body = JSON.stringify({ type, timestamp: job.finished_at ?? new Date().toISOString(), data: { job } });
  return { url: job.request.callback_url, type, body, record: (entry) => deps.log.record(jobId, entry) };
}

/** The endpoint is read at send time: a corrected URL gets the retries and redeliveries. */
async function eventOutgoing(deps: DeliveryDeps, data: TenantEventDelivery): Promise<Outgoing> {
  const { eventId, tenant } = data;
  const [event, endpoint] = await Promise.all([deps.events.get(tenant, eventId), deps.endpoints.get(tenant)]);
  if (!event) throw new UnrecoverableError(`event ${eventId} is gone (past its retention)`);
  if (!endpoint?.events.includes(event.type))
    throw new UnrecoverableError(`the tenant's endpoint is gone or no longer takes ${event.type}`);
  return {
    url: endpoint.url,
    type: event.type,
    body: tenantEventBody(event),
    record: (entry) => deps.eventLog.record(eventSubject(tenant, eventId), entry),
  };
}

/** The BullMQ processor of the webhook queue: one attempt, logged; a failure is thrown for a retry. */
export function createDeliveryProcessor(deps: DeliveryDeps) {
  return async (bullJob: Job<DeliveryPayload>): Promise<void> => {
    const data = bullJob.data;
    const out = data.kind === 'tenant_event' ? await eventOutgoing(deps, data) : await jobOutgoing(deps, data);
    const result = await sendWebhook(
      { url: out.url, id: data.webhookId, body: out.body, secrets: await deps.secrets.signing(data.tenant) },
      deps.settings,
    );
    webhookDeliveries.inc({ outcome: result.outcome });
    await out.record({
      webhook_id: data.webhookId,
      type: out.type,
      status_code: result.status_code,
      duration_ms: result.duration_ms,
      error: result.error,
      response_excerpt: result.response_excerpt,
      at: new Date().toISOString(),
    });
    if (result.outcome === 'refused') throw new UnrecoverableError(result.error ?? 'refused');
    if (result.outcome !== 'success') throw new Error(result.error ?? 'delivery failed');
  };
}

export function webhookQueue(connection: Redis): Queue<DeliveryPayload> {
  const queue = new Queue<DeliveryPayload>(WEBHOOK_QUEUE, { connection, prefix: QUEUE_PREFIX });
  queue.on('error', () => undefined);
  return queue;
}
