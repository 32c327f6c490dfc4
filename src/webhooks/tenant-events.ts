/**
 * Events about a tenant's images and records (not about one job), delivered to the
 * tenant's own webhook endpoint (`PUT /v1/webhooks/endpoint`) with the same signing,
 * retries, delivery log and redelivery as job webhooks. Producers (the catalogue's
 * rescans, the exception sweeper) depend on this interface only.
 */
export const TENANT_EVENT_TYPES = ['image.vulnerabilities.changed', 'exception.expired'] as const;
export type TenantEventType = (typeof TENANT_EVENT_TYPES)[number];

export interface TenantEvents {
  /** Queues the event for the tenant's endpoint when it has one subscribed to `type`; a no-op otherwise. Never throws for "no endpoint". */
  publish(tenant: string, type: TenantEventType, data: Record<string, unknown>): Promise<void>;
}

/** Nest injection token of the TenantEvents implementation. */
export const TENANT_EVENTS = Symbol('TENANT_EVENTS');
