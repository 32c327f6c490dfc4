import type { Redis } from 'ioredis';
import { z } from 'zod';
import { TENANT_EVENT_TYPES, type TenantEventType } from './tenant-events.js';

/** A tenant's own webhook endpoint: where its tenant events (not job webhooks) go. */
export interface WebhookEndpoint {
  url: string;
  events: TenantEventType[];
  created_at: string;
  updated_at: string;
}

/**
 * The body of `PUT /v1/webhooks/endpoint`. The URL's shape is checked here; whether it may
 * be called (the SSRF guard, which resolves the host) is the caller's second step.
 */
export const endpointBodySchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048),
    events: z
      .array(z.enum(TENANT_EVENT_TYPES, { error: `must be one of ${TENANT_EVENT_TYPES.join(', ')}` }))
      .min(1, 'must name at least one event type')
      .max(TENANT_EVENT_TYPES.length * 4)
      // Stored once each, in the order of TENANT_EVENT_TYPES, whatever order the caller sent.
      .transform((events) => TENANT_EVENT_TYPES.filter((t) => events.includes(t))),
  })
  .strict();

const key = (tenant: string) => `stv:webhook-endpoint:${tenant}`;

/** One endpoint per tenant in a Redis hash; kept until deleted (it is configuration, not history). */
export class WebhookEndpoints {
  constructor(private readonly redis: Redis) {}

  async get(tenant: string): Promise<WebhookEndpoint | undefined> {
    const [url, events, created_at, updated_at] = await this.redis.hmget(key(tenant), 'url', 'events', 'created_at', 'updated_at');
    if (!url || !events || !created_at || !updated_at) return undefined;
    return { url, events: parseEvents(events), created_at, updated_at };
  }

  /** Creates or replaces the endpoint; `created` tells which. */
  async put(tenant: string, url: string, events: TenantEventType[]): Promise<{ created: boolean; endpoint: WebhookEndpoint }> {
    const now = new Date().toISOString();
    // One transaction: HSETNX says whether the endpoint is new and keeps the first created_at.
    const results = await this.redis
      .multi()
      .hsetnx(key(tenant), 'created_at', now)
      .hset(key(tenant), 'url', url, 'events', JSON.stringify(events), 'updated_at', now)
      .hget(key(tenant), 'created_at')
      .exec();
    if (!results) throw new Error('endpoint write was aborted');
    for (const [err] of results) if (err) throw err;
    return { created: results[0]![1] === 1, endpoint: { url, events, created_at: String(results[2]![1]), updated_at: now } };
  }

  /** True when the tenant had an endpoint. */
  async delete(tenant: string): Promise<boolean> {
    return (await this.redis.del(key(tenant))) === 1;
  }
}

/** Types a later version no longer knows are dropped rather than failing every read. */
function parseEvents(raw: string): TenantEventType[] {
  const parsed = JSON.parse(raw) as unknown;
  return Array.isArray(parsed) ? TENANT_EVENT_TYPES.filter((t) => parsed.includes(t)) : [];
}
