import { Controller, Get, Param, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import {
  digestSchema,
  listImagesQuerySchema,
  MAX_LIMIT,
  DEFAULT_LIMIT,
  recordMatcher,
  verdictQuerySchema,
} from '../catalogue/catalogue-query.js';
import type { ImageRecord } from '../catalogue/catalogue-record.js';
import { CatalogueStore, InvalidCatalogueCursorError, MAX_EXAMINED } from '../catalogue/catalogue-store.js';
import type { ImageVerdict } from '../catalogue/image-verdict.js';
import { VerdictService } from '../catalogue/verdict-service.js';
import { AppError } from '../errors/app-error.js';
import { validate } from '../errors/validation.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { VERDICT_SCHEMA } from './dto/verdict.dto.js';

const time = { type: 'string', format: 'date-time' };
const stamped = (name: string) => ({
  type: 'object',
  required: [name, 'job_id', 'at'],
  properties: { [name]: { type: 'string' }, job_id: { type: 'string' }, at: time },
});
const counts = Object.fromEntries(['critical', 'high', 'medium', 'low', 'unknown', 'fixable'].map((k) => [k, { type: 'integer' }]));
const IMAGE_RECORD_SCHEMA = {
  type: 'object',
  properties: {
    digest: { type: 'string', example: `sha256:${'0'.repeat(64)}`, description: 'Top digest (the index of a multi-platform image).' },
    repository: { type: 'string', example: 'registry.example:5000/team/app', description: 'Where stevedore first saw it.' },
    repositories: { type: 'array', items: { type: 'string' } },
    references: {
      type: 'array',
      description: 'Tags seen pointing at this digest, most recently seen first (at most 200).',
      items: {
        type: 'object',
        properties: {
          reference: { type: 'string' },
          repository: { type: 'string' },
          tag: { type: 'string' },
          first_seen: time,
          last_seen: time,
        },
      },
    },
    platforms: { type: 'array', items: { type: 'string' } },
    size_bytes: {
      type: 'integer',
      nullable: true,
      description: 'Config + layers of the platform inspected (an index: its default platform).',
    },
    created: { ...time, nullable: true },
    build_job: { type: 'string', nullable: true },
    first_seen: time,
    last_seen: time,
    latest_scan: {
      type: 'object',
      nullable: true,
      properties: {
        job_id: { type: 'string' },
        scanned_at: time,
        db_updated_at: { ...time, nullable: true },
        summary: { type: 'object', properties: counts },
        policy: { type: 'object', properties: { passed: { type: 'boolean' }, violations: { type: 'integer' } } },
        platforms: { type: 'array', items: { type: 'string' } },
        reports: { type: 'array', items: { type: 'string' }, description: 'Artifacts of job_id (kept as long as that job).' },
      },
    },
    signatures: { type: 'array', items: stamped('key'), description: 'Signing key names, never key material.' },
    attestations: { type: 'array', items: stamped('type') },
    sbom: {
      type: 'object',
      nullable: true,
      properties: {
        job_id: { type: 'string' },
        artifact: { type: 'string' },
        platforms: {
          type: 'array',
          items: { type: 'object', properties: { platform: { type: 'string' }, digest: { type: 'string' }, artifact: { type: 'string' } } },
        },
        attached: { type: 'boolean' },
      },
    },
  },
};

function checkDigest(digest: string): string {
  const parsed = digestSchema.safeParse(digest);
  if (parsed.success) return parsed.data;
  const message = parsed.error.issues[0]?.message ?? 'must be a digest';
  throw new AppError('invalid', 'VALIDATION_FAILED', `invalid path: digest: ${message}`, { fields: [{ path: 'digest', message }] });
}

/** Another tenant's digest answers exactly like a missing one. */
const notFound = (digest: string) => new AppError('not_found', 'NOT_FOUND', `no image with digest ${digest} in the catalogue`);

/**
 * The image catalogue (catalogue/): every image stevedore built, copied, signed or
 * scanned for the caller's tenant, by digest. `GET /v1/images/inspect` is another
 * controller's (images.controller.ts): a static route, matched before `{digest}`.
 */
@ApiTags('images')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:read')
@Controller('v1/images')
export class ImagesCatalogueController {
  constructor(
    private readonly catalogue: CatalogueStore,
    private readonly verdicts: VerdictService,
  ) {}

  @Get()
  @ApiOperation({
    summary:
      "Your tenant's catalogued images, most recently seen first. All filters given must hold. One request examines at most " +
      `${MAX_EXAMINED} records: with a narrow filter it may return fewer than \`limit\` items and a next_cursor to continue.`,
  })
  @ApiQuery({
    name: 'repository',
    required: false,
    example: 'team/*',
    description: 'Exact or glob (`*` one segment, `**` any depth); without a registry: on every registry.',
  })
  @ApiQuery({ name: 'tag', required: false, example: '1.2.0' })
  @ApiQuery({
    name: 'severity',
    required: false,
    enum: ['critical', 'high', 'medium', 'low'],
    description: 'The latest scan has a finding at or above.',
  })
  @ApiQuery({ name: 'signed', required: false, enum: ['true', 'false'] })
  @ApiQuery({ name: 'has_sbom', required: false, enum: ['true', 'false'] })
  @ApiQuery({ name: 'limit', required: false, example: DEFAULT_LIMIT, description: `1-${MAX_LIMIT}, default ${DEFAULT_LIMIT}.` })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page.' })
  @ApiResponse({
    status: 200,
    schema: {
      type: 'object',
      required: ['items', 'next_cursor'],
      properties: { items: { type: 'array', items: IMAGE_RECORD_SCHEMA }, next_cursor: { type: 'string', nullable: true } },
    },
  })
  @ApiResponse({ status: 400, description: 'An invalid filter, limit or cursor (error.details.fields lists each).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:read.', schema: ERROR_SCHEMA })
  async list(
    @Query() query: unknown,
    @CurrentPrincipal() principal: Principal,
  ): Promise<{ items: ImageRecord[]; next_cursor: string | null }> {
    const { limit, cursor, ...filters } = validate(listImagesQuerySchema, query ?? {}, 'query');
    try {
      return await this.catalogue.list({ tenant: principal.tenant, limit, cursor, matches: recordMatcher(filters) });
    } catch (err) {
      if (err instanceof InvalidCatalogueCursorError)
        throw new AppError('invalid', 'VALIDATION_FAILED', `invalid query: cursor: ${err.message}`, {
          fields: [{ path: 'cursor', message: err.message }],
        });
      throw err;
    }
  }

  @Get(':digest')
  @ApiOperation({ summary: 'One catalogued image of your tenant by its digest.' })
  @ApiParam({ name: 'digest', example: `sha256:${'0'.repeat(64)}` })
  @ApiResponse({ status: 200, schema: IMAGE_RECORD_SCHEMA })
  @ApiResponse({ status: 400, description: 'Not a digest (sha256:<64 hex> or sha512:<128 hex>).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such image in the catalogue.', schema: ERROR_SCHEMA })
  async get(@Param('digest') digest: string, @CurrentPrincipal() principal: Principal): Promise<ImageRecord> {
    const checked = checkDigest(digest);
    const record = await this.catalogue.get(principal.tenant, checked);
    if (!record) throw notFound(checked);
    return record;
  }

  @Get(':digest/verdict')
  @ApiOperation({
    summary:
      'The verdict of one of your named policies on a catalogued image, from its latest scan (what an admission controller asks). ' +
      'Never scanned, or its reports gone past the job retention: passed false with the rule no_scan or scan_unavailable.',
  })
  @ApiParam({ name: 'digest', example: `sha256:${'0'.repeat(64)}` })
  @ApiQuery({ name: 'policy', required: true, example: 'prod', description: 'The name of one of your policies (GET /v1/policies).' })
  @ApiResponse({ status: 200, schema: VERDICT_SCHEMA })
  @ApiResponse({ status: 400, description: 'Not a digest, or a missing or malformed policy name.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:read.', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 404,
    description: 'IMAGE_NOT_FOUND: your tenant has no such image in the catalogue. POLICY_NOT_FOUND: you have no policy of that name.',
    schema: ERROR_SCHEMA,
  })
  async verdict(@Param('digest') digest: string, @Query() query: unknown, @CurrentPrincipal() principal: Principal): Promise<ImageVerdict> {
    const checked = checkDigest(digest);
    const { policy } = validate(verdictQuerySchema, query ?? {}, 'query');
    return this.verdicts.byName(principal.tenant, checked, policy);
  }
}
