import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { TenantEventType } from './tenant-events.js';

/** One tenant event as it is sent: the Standard Webhooks body is `{type, timestamp, data}`. */
export interface TenantEvent {
  id: string;
  type: TenantEventType;
  timestamp: string;
  data: Record<string, unknown>;
}

/** Event ids as the API shows them (`evt_<uuid>`); the path parameter is checked against this. */
export const EVENT_ID_PATTERN = /^evt_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The webhook-id of an event: the same on every attempt and redelivery. */
export const eventWebhookId = (eventId: string) => `msg_${eventId}`;

/** The exact bytes sent (and signed) for an event, on every attempt. */
export const tenantEventBody = (event: TenantEvent) => JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });

/** The newest events kept listed per tenant; older ones drop out of the listing (and expire). */
export const KEPT_EVENTS = 1000;

const keys = {
  event: (tenant: string, id: string) => `stv:tenant-event:${tenant}:${id}`,
  /** Ids by publish time (ms), newest last. */
  index: (tenant: string) => `stv:tenant-events:${tenant}`,
};

/**
 * Tenant events that were queued for the tenant's endpoint, kept (like job records) for
 * the retention so an attempt, a retry and a redelivery all send the same body. The
 * queued delivery carries the id only; every key carries the tenant, so one tenant's id
 * never reads another's event.
 */
export class TenantEventStore {
  constructor(
    private readonly redis: Redis,
    private readonly retentionSeconds: number,
  ) {}

  async create(tenant: string, type: TenantEventType, data: Record<string, unknown>): Promise<TenantEvent> {
    const now = Date.now();
    const event: TenantEvent = { id: `evt_${randomUUID()}`, type, timestamp: new Date(now).toISOString(), data };
    const results = await this.redis
      .multi()
      .set(keys.event(tenant, event.id), JSON.stringify(event), 'EX', this.retentionSeconds)
      .zadd(keys.index(tenant), now, event.id)
      .zremrangebyrank(keys.index(tenant), 0, -(KEPT_EVENTS + 1))
      .expire(keys.index(tenant), this.retentionSeconds)
      .exec();
    if (!results) throw new Error('event write was aborted');
    for (const [err] of results) if (err) throw err;
    return event;
  }

  async get(tenant: string, id: string): Promise<TenantEvent | undefined> {
    const raw = await this.redis.get(keys.event(tenant, id));
    return raw ? (JSON.parse(raw) as TenantEvent) : undefined;
  }

  /** The tenant's newest events first; ids whose record expired are skipped. */
  async recent(tenant: string, limit: number): Promise<TenantEvent[]> {
    const ids = await this.redis.zrevrange(keys.index(tenant), 0, limit - 1);
    if (!ids.length) return [];
    const raws = await this.redis.mget(ids.map((id) => keys.event(tenant, id)));
    return raws.filter((r): r is string => r !== null).map((r) => JSON.parse(r) as TenantEvent);
  }
}
