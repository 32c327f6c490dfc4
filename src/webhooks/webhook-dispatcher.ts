import { Queue, UnrecoverableError, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { JobStore } from '../jobs/job-store.js';
import { QUEUE_PREFIX } from '../jobs/queues.js';
import type { JobRecord, TerminalState } from '../jobs/job-types.js';
import { webhookDeliveries } from '../metrics/metrics.js';
import type { DeliveryLog } from './delivery-log.js';
import { sendWebhook } from './webhook-sender.js';
import type { WebhookSecrets } from './signing-secrets.js';

export const WEBHOOK_QUEUE = 'stevedore-webhooks';

/** A queued delivery holds references only: the body is built from the job record at send time. */
export interface DeliveryPayload {
  jobId: string;
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
 * Enqueues a signed webhook for every finished job that has a callback_url; BullMQ
 * retries failed attempts with exponential backoff and jitter (at-least-once).
 */
export class WebhookDispatcher {
  constructor(
    private readonly queue: Queue<DeliveryPayload>,
    private readonly settings: WebhookSettings,
  ) {}

  async jobFinished(job: JobRecord): Promise<void> {
    if (!job.request.callback_url) return;
    await this.enqueue(job, `wh-${job.id}`);
  }

  /** Sends the job's event again (same webhook-id), whatever happened before. */
  async redeliver(job: JobRecord): Promise<string> {
    await this.enqueue(job, `wh-${job.id}-${Date.now()}`);
    return webhookIdFor(job.id);
  }

  private async enqueue(job: JobRecord, bullId: string): Promise<void> {
    await this.queue.add(
      'deliver',
      { jobId: job.id, tenant: job.tenant, webhookId: webhookIdFor(job.id) },
      {
        jobId: bullId,
        attempts: this.settings.attempts,
        backoff: { type: 'exponential', delay: this.settings.retryBaseMs, jitter: 0.5 },
        removeOnComplete: true,
        removeOnFail: { age: 7 * 24 * 3600 },
      },
    );
  }
}

/** The BullMQ processor of the webhook queue: one attempt, logged; a failure is thrown for a retry. */
export function createDeliveryProcessor(deps: { store: JobStore; secrets: WebhookSecrets; log: DeliveryLog; settings: WebhookSettings }) {
  return async (bullJob: Job<DeliveryPayload>): Promise<void> => {
    const { jobId, tenant, webhookId } = bullJob.data;
    const job = await deps.store.get(jobId);
    if (!job?.request.callback_url || job.tenant !== tenant) throw new UnrecoverableError('the job or its callback is gone');
    const type = EVENT_TYPES[job.state as TerminalState];
    if (!type) throw new UnrecoverableError(`job ${jobId} is not finished`);
    const body = JSON.stringify({ type, timestamp: job.finished_at ?? new Date().toISOString(), data: { job } });
    const result = await sendWebhook(
      { url: job.request.callback_url, id: webhookId, body, secrets: await deps.secrets.signing(tenant) },
      deps.settings,
    );
    webhookDeliveries.inc({ outcome: result.outcome });
    await deps.log.record(jobId, {
      webhook_id: webhookId,
      type,
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
