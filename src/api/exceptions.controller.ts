import { Body, Controller, Delete, Get, Headers, HttpCode, Inject, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { randomUUID } from 'node:crypto';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { AppError } from '../errors/app-error.js';
import { invalidFields, validate } from '../errors/validation.js';
import { checkExpiry, createExceptionSchema, vexQuerySchema } from '../exceptions/exception-input.js';
import { ExceptionLimitError, ExceptionStore, isActive, type VulnerabilityException } from '../exceptions/exception-store.js';
import { exportOpenVex, importOpenVex, VexDocumentError, type OpenVexDocument } from '../exceptions/openvex.js';
import { ERROR_SCHEMA, openApiSchema } from '../openapi/openapi-schemas.js';

/** Largest OpenVEX document POST /v1/vex reads (as JSON text). */
export const MAX_VEX_BYTES = 512 * 1024;
const ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type ExceptionView = VulnerabilityException & { status: 'active' | 'expired' };
const view = (e: VulnerabilityException, now = new Date()): ExceptionView => ({ ...e, status: isActive(e, now) ? 'active' : 'expired' });

const EXCEPTION_SCHEMA = {
  type: 'object',
  required: ['id', 'vulnerability_id', 'scope', 'reason', 'owner', 'expires', 'created_at', 'source', 'status'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    vulnerability_id: { type: 'string', example: 'CVE-2021-23337' },
    scope: { type: 'object', example: { repository: 'team/*' }, description: '{repository: glob} or {digest: "sha256:…"}' },
    reason: { type: 'string' },
    owner: { type: 'string' },
    expires: { type: 'string', format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    source: { type: 'string', enum: ['api', 'openvex'] },
    status: { type: 'string', enum: ['active', 'expired'] },
    expired_notified_at: { type: 'string', format: 'date-time', description: 'When exception.expired was sent.' },
  },
};
const LIST_SCHEMA = { type: 'object', required: ['items'], properties: { items: { type: 'array', items: EXCEPTION_SCHEMA } } };
const ID_PARAM = { name: 'id', description: 'Exception id (a UUID).' };

/** Another tenant's exception answers exactly like a missing one. */
const notFound = (id: string) => new AppError('not_found', 'NOT_FOUND', `no exception ${id}`);
const checkId = (id: string) => {
  if (!ID.test(id)) throw invalidFields([{ path: 'id', message: 'must be an exception id (a UUID)' }], 'path');
  return id;
};
const tooMany = (err: unknown): never => {
  if (err instanceof ExceptionLimitError) throw new AppError('rate_limited', 'EXCEPTION_LIMIT', err.message, { limit: err.limit });
  throw err;
};

/**
 * Exceptions of the caller's tenant: a vulnerability accepted for a repository glob or
 * one digest, with a reason, an owner and an end. Scan gates apply the active ones and
 * name them in the verdict; Trivy gets them as VEX; they export and import as OpenVEX.
 */
@ApiTags('exceptions')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('v1')
export class ExceptionsController {
  constructor(
    private readonly store: ExceptionStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('exceptions')
  @RequireScope('jobs:write')
  @ApiOperation({ summary: 'Accept one vulnerability for a repository glob or a digest, until a date.' })
  @ApiBody({ schema: openApiSchema(createExceptionSchema) })
  @ApiResponse({ status: 201, description: 'Created.', schema: EXCEPTION_SCHEMA })
  @ApiResponse({ status: 400, description: 'Invalid body (error.details.fields lists each).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:write.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 429, description: 'The tenant holds STEVEDORE_EXCEPTION_MAX_PER_TENANT active exceptions.', schema: ERROR_SCHEMA })
  async create(@Body() body: unknown, @CurrentPrincipal() principal: Principal): Promise<ExceptionView> {
    const input = validate(createExceptionSchema, body ?? {}, 'body');
    const expires = checkExpiry(input.expires, this.config.exceptions.maxDays);
    const created = await this.store.create(principal.tenant, { ...input, expires, source: 'api' }).catch(tooMany);
    return view(created);
  }

  @Get('exceptions')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "Your tenant's exceptions, active and recently expired, soonest expiry first." })
  @ApiResponse({ status: 200, schema: LIST_SCHEMA })
  async list(@CurrentPrincipal() principal: Principal): Promise<{ items: ExceptionView[] }> {
    const now = new Date();
    return { items: (await this.store.list(principal.tenant)).map((e) => view(e, now)) };
  }

  @Get('exceptions.openvex')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "Your tenant's active exceptions as an OpenVEX v0.2.0 document (statements not_affected)." })
  @ApiResponse({ status: 200, schema: { type: 'object', description: 'OpenVEX document (README, "Exceptions").' } })
  async openvex(@CurrentPrincipal() principal: Principal): Promise<OpenVexDocument> {
    return exportOpenVex(principal.tenant, await this.store.active(principal.tenant));
  }

  @Get('exceptions/:id')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: 'One exception.' })
  @ApiParam(ID_PARAM)
  @ApiResponse({ status: 200, schema: EXCEPTION_SCHEMA })
  @ApiResponse({ status: 400, description: 'Not an exception id (a UUID).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such exception.', schema: ERROR_SCHEMA })
  async get(@Param('id') id: string, @CurrentPrincipal() principal: Principal): Promise<ExceptionView> {
    const found = await this.store.get(principal.tenant, checkId(id));
    if (!found) throw notFound(id);
    return view(found);
  }

  @Delete('exceptions/:id')
  @HttpCode(204)
  @RequireScope('jobs:write')
  @ApiOperation({ summary: 'Withdraw an exception: gates stop applying it at once.' })
  @ApiParam(ID_PARAM)
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiResponse({ status: 400, description: 'Not an exception id (a UUID).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such exception.', schema: ERROR_SCHEMA })
  async remove(@Param('id') id: string, @CurrentPrincipal() principal: Principal): Promise<void> {
    if (!(await this.store.delete(principal.tenant, checkId(id)))) throw notFound(id);
  }

  @Post('vex')
  @RequireScope('jobs:write')
  @ApiOperation({
    summary:
      'Create exceptions from an OpenVEX document: one per not_affected or fixed statement and product ' +
      '(owner: the document author; expires: the required query parameter).',
  })
  @ApiQuery({ name: 'expires', required: true, example: '2027-01-01', description: 'Expiry of every exception created.' })
  @ApiBody({ schema: { type: 'object', description: `OpenVEX v0.2.0 document, at most ${MAX_VEX_BYTES} bytes.` } })
  @ApiResponse({
    status: 201,
    schema: { type: 'object', properties: { items: LIST_SCHEMA.properties.items, skipped: { type: 'integer' } } },
  })
  @ApiResponse({ status: 400, description: 'Not an OpenVEX document stevedore can use, or a bad expires.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 413, description: 'Document too large.', schema: ERROR_SCHEMA })
  async importVex(
    @Body() body: unknown,
    @Query() query: unknown,
    @Headers('content-length') length: string | undefined,
    @CurrentPrincipal() principal: Principal,
  ): Promise<{ items: ExceptionView[]; skipped: number }> {
    if (Number(length ?? 0) > MAX_VEX_BYTES || Buffer.byteLength(JSON.stringify(body ?? null)) > MAX_VEX_BYTES)
      throw new AppError('too_large', 'PAYLOAD_TOO_LARGE', `an OpenVEX document may be at most ${MAX_VEX_BYTES} bytes`);
    const expires = checkExpiry(
      validate(vexQuerySchema, query ?? {}, 'query').expires,
      this.config.exceptions.maxDays,
      new Date(),
      'expires',
      'query',
    );
    let parsed: ReturnType<typeof importOpenVex>;
    try {
      parsed = importOpenVex(body);
    } catch (err) {
      if (err instanceof VexDocumentError) throw invalidFields(err.fields);
      throw err;
    }
    const now = new Date();
    const records: VulnerabilityException[] = parsed.exceptions.map((e) => ({
      id: randomUUID(),
      ...e,
      reason: e.reason.slice(0, 1024),
      owner: parsed.author,
      expires,
      created_at: now.toISOString(),
      source: 'openvex',
    }));
    await this.store.createMany(principal.tenant, records, now).catch(tooMany);
    return { items: records.map((r) => view(r, now)), skipped: parsed.skipped };
  }
}
