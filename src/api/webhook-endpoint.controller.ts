import { Body, Controller, Delete, Get, HttpCode, Inject, Put, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { callbackProblem } from '../webhooks/callback-guard.js';
import { TENANT_EVENT_TYPES } from '../webhooks/tenant-events.js';
import { endpointBodySchema, WebhookEndpoints, type WebhookEndpoint } from '../webhooks/webhook-endpoints.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';
import { invalidFields, validate } from '../errors/validation.js';

const EVENTS_SCHEMA = { type: 'array', minItems: 1, items: { type: 'string', enum: [...TENANT_EVENT_TYPES] } };
const ENDPOINT_PROPERTIES = {
  url: { type: 'string', format: 'uri', example: 'https://hooks.example.com/stevedore' },
  events: EVENTS_SCHEMA,
  created_at: { type: 'string', format: 'date-time' },
  updated_at: { type: 'string', format: 'date-time' },
};
const ENDPOINT_SCHEMA = { type: 'object', required: Object.keys(ENDPOINT_PROPERTIES), properties: ENDPOINT_PROPERTIES };

const notFound = () => new AppError('not_found', 'NOT_FOUND', 'your tenant has no webhook endpoint');

/**
 * The caller's tenant's webhook endpoint: where tenant events (about its images and
 * records, not one job) are sent, signed with the tenant's webhook secret. Beside the
 * per-job callback_url, which only carries job events.
 */
@ApiTags('webhooks')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('secrets:write')
@Controller('v1/webhooks/endpoint')
export class WebhookEndpointController {
  constructor(
    private readonly endpoints: WebhookEndpoints,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Put()
  @ApiOperation({
    summary:
      "Set your tenant's webhook endpoint (one per tenant) and the tenant events it receives. The URL passes the same " +
      'guard as callback_url: internal addresses are refused now and again when each delivery connects.',
  })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['url', 'events'],
      additionalProperties: false,
      properties: { url: { type: 'string', format: 'uri', maxLength: 2048 }, events: EVENTS_SCHEMA },
    },
  })
  @ApiResponse({ status: 201, description: 'Created.', schema: ENDPOINT_SCHEMA })
  @ApiResponse({ status: 200, description: 'Replaced.', schema: ENDPOINT_SCHEMA })
  @ApiResponse({
    status: 400,
    description: 'Invalid body, unknown event type or refused URL (error.details.fields).',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  async put(
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ): Promise<WebhookEndpoint> {
    const { url, events } = validate(endpointBodySchema, body ?? {}, 'body');
    const problem = await callbackProblem(url, this.config.webhooks.allowedHosts);
    if (problem) throw invalidFields([{ path: 'url', message: problem }]);
    const { created, endpoint } = await this.endpoints.put(principal.tenant, url, events);
    void reply.status(created ? 201 : 200);
    return endpoint;
  }

  @Get()
  @ApiOperation({ summary: "Your tenant's webhook endpoint." })
  @ApiResponse({ status: 200, schema: ENDPOINT_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no endpoint.', schema: ERROR_SCHEMA })
  async get(@CurrentPrincipal() principal: Principal): Promise<WebhookEndpoint> {
    const endpoint = await this.endpoints.get(principal.tenant);
    if (!endpoint) throw notFound();
    return endpoint;
  }

  @Delete()
  @HttpCode(204)
  @ApiOperation({ summary: 'Remove the endpoint: no tenant events are queued from then on, and queued retries stop.' })
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no endpoint.', schema: ERROR_SCHEMA })
  async remove(@CurrentPrincipal() principal: Principal): Promise<void> {
    if (!(await this.endpoints.delete(principal.tenant))) throw notFound();
  }
}
