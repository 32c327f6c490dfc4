import type { WebhookDispatcher } from './webhook-dispatcher.js';
import type { TenantEventStore } from './tenant-event-store.js';
import type { TenantEvents, TenantEventType } from './tenant-events.js';
import type { WebhookEndpoints } from './webhook-endpoints.js';

/**
 * TenantEvents over the job webhook path: an event the tenant's endpoint subscribes to is
 * stored (so every attempt and redelivery sends the same body) and queued on the webhook
 * queue, where the same sender, signing, retries and delivery log handle it.
 */
export class TenantEventPublisher implements TenantEvents {
  constructor(
    private readonly endpoints: WebhookEndpoints,
    private readonly events: TenantEventStore,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  async publish(tenant: string, type: TenantEventType, data: Record<string, unknown>): Promise<void> {
    const endpoint = await this.endpoints.get(tenant);
    // Nothing is stored for a tenant that does not listen: no endpoint, no history.
    if (!endpoint?.events.includes(type)) return;
    const event = await this.events.create(tenant, type, data);
    await this.dispatcher.tenantEvent(tenant, event.id);
  }
}
