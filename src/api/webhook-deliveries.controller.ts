import { Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { eventSubject, TenantEventDeliveryLog, type DeliveryAttempt } from '../webhooks/delivery-log.js';
import { EVENT_ID_PATTERN, eventWebhookId, KEPT_EVENTS, TenantEventStore, type TenantEvent } from '../webhooks/tenant-event-store.js';
import { TENANT_EVENT_TYPES } from '../webhooks/tenant-events.js';
import { WebhookDispatcher } from '../webhooks/webhook-dispatcher.js';
import { WebhookEndpoints } from '../webhooks/webhook-endpoints.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';
import { validate } from '../errors/validation.js';

const ATTEMPT_SCHEMA = {
  type: 'object',
  required: ['attempt', 'webhook_id', 'type', 'status_code', 'duration_ms', 'error', 'at'],
  properties: {
    attempt: { type: 'integer' },
    webhook_id: { type: 'string' },
    type: { type: 'string', enum: [...TENANT_EVENT_TYPES] },
    status_code: { type: 'integer', nullable: true },
    duration_ms: { type: 'integer' },
    error: { type: 'string', nullable: true },
    response_excerpt: { type: 'string', nullable: true },
    at: { type: 'string', format: 'date-time' },
  },
};
const SUMMARY_PROPERTIES = {
  id: { type: 'string', example: 'evt_0b7c…' },
  webhook_id: { type: 'string', description: 'The `webhook-id` header of every attempt of this event.' },
  type: { type: 'string', enum: [...TENANT_EVENT_TYPES] },
  timestamp: { type: 'string', format: 'date-time' },
  attempts: { type: 'integer', description: 'Attempts so far (retries and redeliveries included).' },
  last_attempt: { ...ATTEMPT_SCHEMA, nullable: true },
};
const SUMMARY_SCHEMA = { type: 'object', required: Object.keys(SUMMARY_PROPERTIES), properties: SUMMARY_PROPERTIES };
const DETAIL_SCHEMA = {
  type: 'object',
  required: ['id', 'webhook_id', 'type', 'timestamp', 'data', 'items'],
  properties: {
    ...SUMMARY_PROPERTIES,
    data: { type: 'object', additionalProperties: true, description: 'The event data, as sent.' },
    items: { type: 'array', items: ATTEMPT_SCHEMA, description: 'Every attempt, oldest first.' },
  },
};
const ID_PARAM = { name: 'id', description: 'A tenant event id (`evt_<uuid>`).' };

const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(KEPT_EVENTS).default(50) }).strict();

/** An id that is malformed, expired or another tenant's answers exactly like a missing one. */
const notFound = (id: string) => new AppError('not_found', 'NOT_FOUND', `no tenant event ${id}`);

/** Deliveries of tenant events to the tenant's endpoint: attempts, and a way to send one again. */
@ApiTags('webhooks')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('v1/webhooks/deliveries')
export class WebhookDeliveriesController {
  constructor(
    private readonly events: TenantEventStore,
    private readonly log: TenantEventDeliveryLog,
    private readonly endpoints: WebhookEndpoints,
    private readonly dispatcher: WebhookDispatcher,
  ) {}

  @Get()
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "Your tenant's events sent to its endpoint, newest first, each with its latest attempt." })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: KEPT_EVENTS, default: 50 } })
  @ApiResponse({
    status: 200,
    schema: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: SUMMARY_SCHEMA } } },
  })
  @ApiResponse({ status: 400, description: 'Invalid limit.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:read.', schema: ERROR_SCHEMA })
  async list(@Query() query: unknown, @CurrentPrincipal() principal: Principal) {
    const { limit } = validate(listQuery, query ?? {}, 'query');
    const events = await this.events.recent(principal.tenant, limit);
    const latest = await this.log.latest(events.map((e) => eventSubject(principal.tenant, e.id)));
    return { items: events.map((e, i) => summary(e, latest[i] ?? null)) };
  }

  @Get(':id')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: 'One tenant event as sent, and every delivery attempt of it, oldest first.' })
  @ApiParam(ID_PARAM)
  @ApiResponse({ status: 200, schema: DETAIL_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:read.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such event (or past its retention).', schema: ERROR_SCHEMA })
  async get(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    const event = await this.find(principal.tenant, id);
    const items = await this.log.list(eventSubject(principal.tenant, id));
    return { ...summary(event, items.at(-1) ?? null), data: event.data, items };
  }

  @Post(':id/redeliver')
  @RequireScope('jobs:write')
  @HttpCode(202)
  @ApiOperation({ summary: "Send the event again to the endpoint's current URL (same webhook-id and body; retried like the first)." })
  @ApiParam(ID_PARAM)
  @ApiResponse({ status: 202, schema: { type: 'object', required: ['webhook_id'], properties: { webhook_id: { type: 'string' } } } })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:write.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such event (or past its retention).', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 409,
    description: "NO_ENDPOINT: the tenant has no endpoint, or it no longer takes the event's type.",
    schema: ERROR_SCHEMA,
  })
  async redeliver(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    const event = await this.find(principal.tenant, id);
    const endpoint = await this.endpoints.get(principal.tenant);
    if (!endpoint?.events.includes(event.type))
      throw new AppError('failed_precondition', 'NO_ENDPOINT', `your tenant has no webhook endpoint taking ${event.type}`);
    return { webhook_id: await this.dispatcher.redeliverTenantEvent(principal.tenant, id) };
  }

  private async find(tenant: string, id: string): Promise<TenantEvent> {
    const event = EVENT_ID_PATTERN.test(id) ? await this.events.get(tenant, id) : undefined;
    if (!event) throw notFound(id);
    return event;
  }
}

function summary(event: TenantEvent, last: DeliveryAttempt | null) {
  return {
    id: event.id,
    webhook_id: eventWebhookId(event.id),
    type: event.type,
    timestamp: event.timestamp,
    attempts: last?.attempt ?? 0,
    last_attempt: last,
  };
}
