import { Body, Controller, Delete, Get, HttpCode, Param, Put, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import {
  MAX_SECRET_VALUE_BYTES,
  SECRET_NAME_PATTERN,
  SECRET_NAME_RULE,
  SecretsUnavailableError,
  TenantSecrets,
  type SecretMetadata,
} from '../secrets/tenant-secrets.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';
import { validate } from '../errors/validation.js';

// Messages are fixed strings: a refused value is never echoed back or logged.
const putSecretSchema = z
  .object({
    value: z
      .string({ error: 'must be a string' })
      .min(1, 'must not be empty')
      .refine((v) => Buffer.byteLength(v, 'utf8') <= MAX_SECRET_VALUE_BYTES, `must be at most ${MAX_SECRET_VALUE_BYTES} bytes (UTF-8)`)
      // Values reach buildctl as environment variables, which cannot hold a NUL byte.
      .refine((v) => !v.includes('\0'), 'must not contain a NUL byte'),
  })
  .strict();

const METADATA_PROPERTIES = {
  name: { type: 'string', example: 'npm_token' },
  created_at: { type: 'string', format: 'date-time' },
  updated_at: { type: 'string', format: 'date-time' },
};
const METADATA_SCHEMA = { type: 'object', required: Object.keys(METADATA_PROPERTIES), properties: METADATA_PROPERTIES };
const NAME_PARAM = { name: 'name', description: `Secret name: ${SECRET_NAME_RULE}.`, example: 'npm_token' };

function checkName(name: string): string {
  if (SECRET_NAME_PATTERN.test(name)) return name;
  throw new AppError('invalid', 'VALIDATION_FAILED', `invalid path: name: ${SECRET_NAME_RULE}`, {
    fields: [{ path: 'name', message: SECRET_NAME_RULE }],
  });
}

/** Another tenant's secret answers exactly like a missing one. */
const notFound = (name: string) => new AppError('not_found', 'NOT_FOUND', `no secret named ${name}`);

async function mapSecretErrors<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    if (err instanceof SecretsUnavailableError) throw new AppError('unavailable', 'SECRETS_UNAVAILABLE', err.message);
    throw err;
  }
}

/**
 * Build secrets of the caller's tenant. Write-only: the value goes in with PUT and
 * only a build (`secrets: [name]`, `RUN --mount=type=secret,id=name`) reads it again.
 */
@ApiTags('secrets')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('secrets:write')
@Controller('v1/secrets')
export class SecretsController {
  constructor(private readonly secrets: TenantSecrets) {}

  @Put(':name')
  @ApiOperation({
    summary:
      'Create or replace a build secret of your tenant. Stored encrypted ' +
      '(AES-256-GCM); the answer and every later read carry metadata only.',
  })
  @ApiParam(NAME_PARAM)
  @ApiBody({
    schema: {
      type: 'object',
      required: ['value'],
      additionalProperties: false,
      properties: { value: { type: 'string', minLength: 1, description: `At most ${MAX_SECRET_VALUE_BYTES} bytes, no NUL byte.` } },
    },
  })
  @ApiResponse({ status: 201, description: 'Created.', schema: METADATA_SCHEMA })
  @ApiResponse({ status: 200, description: 'Replaced.', schema: METADATA_SCHEMA })
  @ApiResponse({ status: 400, description: 'Invalid name or body (error.details.fields lists each).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  async put(
    @Param('name') name: string,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ): Promise<SecretMetadata> {
    checkName(name);
    const { value } = validate(putSecretSchema, body ?? {}, 'body');
    const { created, metadata } = await mapSecretErrors(this.secrets.put(principal.tenant, name, value));
    void reply.status(created ? 201 : 200);
    return metadata;
  }

  @Get()
  @ApiOperation({ summary: "Your tenant's build secrets, by name (never their values)." })
  @ApiResponse({
    status: 200,
    schema: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: METADATA_SCHEMA } } },
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks secrets:write.', schema: ERROR_SCHEMA })
  async list(@CurrentPrincipal() principal: Principal): Promise<{ items: SecretMetadata[] }> {
    return { items: await this.secrets.list(principal.tenant) };
  }

  @Get(':name')
  @ApiOperation({ summary: "A secret's metadata (never its value)." })
  @ApiParam(NAME_PARAM)
  @ApiResponse({ status: 200, schema: METADATA_SCHEMA })
  @ApiResponse({ status: 400, description: 'Invalid name.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such secret.', schema: ERROR_SCHEMA })
  async get(@Param('name') name: string, @CurrentPrincipal() principal: Principal): Promise<SecretMetadata> {
    const metadata = await this.secrets.get(principal.tenant, checkName(name));
    if (!metadata) throw notFound(name);
    return metadata;
  }

  @Delete(':name')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete a secret; builds naming it are refused from then on.' })
  @ApiParam(NAME_PARAM)
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiResponse({ status: 400, description: 'Invalid name.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such secret.', schema: ERROR_SCHEMA })
  async remove(@Param('name') name: string, @CurrentPrincipal() principal: Principal): Promise<void> {
    if (!(await this.secrets.delete(principal.tenant, checkName(name)))) throw notFound(name);
  }
}
