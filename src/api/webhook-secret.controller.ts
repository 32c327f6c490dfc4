import { Controller, Get, HttpCode, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { WebhookSecrets } from '../webhooks/signing-secrets.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';

const SECRET_SCHEMA = {
  type: 'object',
  required: ['secret'],
  properties: {
    secret: { type: 'string', example: 'whsec_…', description: 'Standard Webhooks secret: verify `webhook-signature` with it.' },
  },
};

/** The caller's tenant's webhook signing secret. */
@ApiTags('webhooks')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('secrets:write')
@Controller('v1/webhooks/secret')
export class WebhookSecretController {
  constructor(private readonly secrets: WebhookSecrets) {}

  @Get()
  @ApiOperation({
    summary:
      "The tenant's webhook signing secret (made on first use). Webhooks carry `webhook-id`, " +
      '`webhook-timestamp` and `webhook-signature: v1,<base64 HMAC-SHA256>` (Standard Webhooks).',
  })
  @ApiResponse({ status: 200, schema: SECRET_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  async get(@CurrentPrincipal() principal: Principal) {
    return { secret: await this.secrets.current(principal.tenant) };
  }

  @Post('rotate')
  @HttpCode(200)
  @ApiOperation({ summary: 'A new secret; for 24 h webhooks carry signatures with both the new and the previous one.' })
  @ApiResponse({
    status: 200,
    schema: {
      type: 'object',
      required: ['secret', 'previous_valid_until'],
      properties: { secret: { type: 'string' }, previous_valid_until: { type: 'string', format: 'date-time' } },
    },
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  rotate(@CurrentPrincipal() principal: Principal) {
    return this.secrets.rotate(principal.tenant);
  }
}
