import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { z } from 'zod';
import { ApiKeyStore, type ApiKeyRecord } from '../auth/api-key-store.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, SCOPES, TENANT_PATTERN, type Principal } from '../auth/principal.js';
import { MAX_PATTERNS, normalizePattern, patternCovers } from '../auth/repository-patterns.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ERROR_SCHEMA, REPOSITORIES_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';
import { grantableLimits } from '../auth/key-limits.js';
import { writablePatterns } from '../admission/repository-policy.js';
import { validate } from '../errors/validation.js';

const createKeySchema = z
  .object({
    tenant: z.string().regex(TENANT_PATTERN, 'must be 1-63 lowercase letters, digits and ._- (starting with a letter or digit)'),
    scopes: z
      .array(z.enum(SCOPES, { error: `must be one of ${SCOPES.join(', ')}` }))
      .min(1, 'give at least one scope')
      .max(SCOPES.length),
    rate_limit_per_minute: z.int('must be a whole number').min(1).max(1_000_000).optional(),
    max_concurrent_jobs: z.int('must be a whole number').min(1).max(10_000).optional(),
    repositories: z
      .array(
        z.string().transform((p, ctx) => {
          try {
            return normalizePattern(p);
          } catch (err) {
            ctx.addIssue({ code: 'custom', message: (err as Error).message });
            return z.NEVER;
          }
        }),
      )
      .max(MAX_PATTERNS, `at most ${MAX_PATTERNS} patterns`)
      .transform((patterns) => [...new Set(patterns)])
      .optional(),
  })
  .strict();

const KEY_PROPERTIES = {
  id: { type: 'string', format: 'uuid' },
  tenant: { type: 'string' },
  scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] } },
  rate_limit_per_minute: { type: 'integer', nullable: true },
  max_concurrent_jobs: { type: 'integer', nullable: true },
  repositories: {
    ...REPOSITORIES_SCHEMA,
    nullable: true,
    description: `${REPOSITORIES_SCHEMA.description} null: the server's default (STEVEDORE_DEFAULT_TENANT_REPOSITORIES).`,
  },
  created_at: { type: 'string', format: 'date-time' },
};
const KEY_SCHEMA = { type: 'object', required: Object.keys(KEY_PROPERTIES), properties: KEY_PROPERTIES };
const CREATED_SCHEMA = {
  type: 'object',
  required: ['key', ...Object.keys(KEY_PROPERTIES)],
  properties: { key: { type: 'string', description: 'Shown once; only its hash is stored.' }, ...KEY_PROPERTIES },
};
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * API keys (admin). The admin token manages every tenant's keys; a key with the
 * `admin` scope manages only its own tenant's, so no tenant can mint keys for another.
 */
@ApiTags('api-keys')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('admin')
@Controller('v1/api-keys')
export class ApiKeysController {
  constructor(
    private readonly keys: ApiKeyStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @ApiOperation({ summary: 'Create an API key for a tenant. The key is in this answer only; the server keeps its SHA-256.' })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['tenant', 'scopes'],
      properties: {
        tenant: { type: 'string', example: 'team-a' },
        scopes: { type: 'array', items: { type: 'string', enum: [...SCOPES] }, example: ['jobs:read', 'jobs:write'] },
        rate_limit_per_minute: { type: 'integer', minimum: 1 },
        max_concurrent_jobs: { type: 'integer', minimum: 1, description: "Sets the tenant's cap on running jobs." },
        repositories: REPOSITORIES_SCHEMA,
      },
    },
  })
  @ApiResponse({ status: 201, schema: CREATED_SCHEMA })
  @ApiResponse({ status: 400, description: 'Invalid body.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 403,
    description:
      'Not admin, another tenant, (REPOSITORY_FORBIDDEN) repositories wider than the ' +
      'creating key’s, or (LIMIT_FORBIDDEN) a rate_limit_per_minute or max_concurrent_jobs ' +
      'above the creating key’s own or the operator’s ceiling (details.path names the field).',
    schema: ERROR_SCHEMA,
  })
  async create(@Body() body: unknown, @CurrentPrincipal() principal: Principal) {
    const input = validate(createKeySchema, body ?? {}, 'body');
    if (!principal.root && input.tenant !== principal.tenant)
      throw new AppError('forbidden', 'FORBIDDEN', `an admin key of tenant ${principal.tenant} cannot create keys for another tenant`);
    const repositories = this.grantable(input.repositories, principal);
    const limits = grantableLimits(input, principal, this.config, principal.root ? undefined : await this.keys.tenantCap(input.tenant));
    const { record, key } = await this.keys.create({ ...input, ...limits, repositories });
    return { key, ...record };
  }

  /**
   * A tenant's admin key hands out at most its own repositories: each pattern asked for
   * must lie inside one of its own, and a key made without any copies the maker's.
   */
  private grantable(asked: string[] | undefined, principal: Principal): string[] | undefined {
    if (principal.root) return asked;
    if (!asked) return principal.repositories ? [...principal.repositories] : undefined;
    const own = writablePatterns(principal, this.config);
    const refused = asked.flatMap((pattern, i) =>
      own.some((o) => patternCovers(o, pattern)) ? [] : [{ path: `repositories.${i}`, pattern }],
    );
    if (refused.length)
      throw new AppError(
        'forbidden',
        'REPOSITORY_FORBIDDEN',
        `${refused[0]!.path}: ${refused[0]!.pattern} is not inside the repositories of the API key creating it`,
        { path: refused[0]!.path, refused },
      );
    return asked;
  }

  @Get()
  @ApiOperation({ summary: 'API keys (never the keys themselves): all of them for the admin token, the own tenant’s for an admin key.' })
  @ApiResponse({
    status: 200,
    schema: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: KEY_SCHEMA } } },
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'Not admin.', schema: ERROR_SCHEMA })
  async list(@CurrentPrincipal() principal: Principal): Promise<{ items: ApiKeyRecord[] }> {
    const items = await this.keys.list();
    return { items: principal.root ? items : items.filter((k) => k.tenant === principal.tenant) };
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke an API key, effective with the next request.' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 204, description: 'Revoked.' })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'Not admin.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'No such key.', schema: ERROR_SCHEMA })
  async remove(@Param('id') id: string, @CurrentPrincipal() principal: Principal): Promise<void> {
    const record = UUID.test(id) ? (await this.keys.list()).find((k) => k.id === id) : undefined;
    if (!record || (!principal.root && record.tenant !== principal.tenant))
      throw new AppError('not_found', 'NOT_FOUND', `no API key ${id}`);
    await this.keys.delete(id);
  }
}
