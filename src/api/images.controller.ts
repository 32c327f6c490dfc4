import { Controller, Get, Inject, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Redis } from 'ioredis';
import { ImageInspector, type ImageInfo } from '../engines/registry/image-inspector.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import { REDIS } from '../jobs/redis.module.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { canonicalRepository } from '../auth/repository-patterns.js';
import { assertRepositoriesAllowed } from '../admission/repository-policy.js';
import { assertRegistriesAllowed } from '../admission/registry-policy.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { inspectQuerySchema } from '../jobs/job-request.schema.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError, type ErrorKind } from '../errors/app-error.js';
import { validate } from '../errors/validation.js';

/** An image's content never changes for a digest: cache by digest (and platform) for a day. */
const CACHE_TTL_SECONDS = 24 * 3600;
const KIND_BY_CODE: Record<string, ErrorKind> = {
  IMAGE_NOT_FOUND: 'not_found',
  PLATFORM_NOT_FOUND: 'not_found',
  INVALID_REFERENCE: 'invalid',
  REGISTRY_UNAUTHORIZED: 'upstream',
  REGISTRY_UNAVAILABLE: 'upstream',
  REGISTRY_ERROR: 'upstream',
};

@ApiTags('images')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:read')
@Controller('v1/images')
export class ImagesController {
  constructor(
    private readonly inspector: ImageInspector,
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Get('inspect')
  @ApiOperation({
    summary:
      'Inspect an image synchronously (same image_info as an inspect job), cached by digest (per tenant ' +
      'and repository). Only images within the API key’s repositories or the shared read-only ones.',
  })
  @ApiQuery({ name: 'ref', required: true, example: 'debian:bookworm-slim' })
  @ApiQuery({ name: 'platform', required: false, example: 'linux/amd64' })
  @ApiResponse({ status: 200, description: 'image_info' })
  @ApiResponse({
    status: 400,
    description:
      'Invalid reference or platform, or REGISTRY_FORBIDDEN (a loopback, private, ' +
      'link-local or metadata address that is not a configured registry).',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({
    status: 403,
    description:
      'FORBIDDEN (missing scope) or REPOSITORY_FORBIDDEN (the image is outside the API key’s repositories ' +
      'and the shared read-only ones).',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({ status: 404, description: 'IMAGE_NOT_FOUND or PLATFORM_NOT_FOUND.', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 502,
    description:
      'REGISTRY_UNAVAILABLE (the registry could not be reached, whatever the cause) / ' +
      'REGISTRY_UNAUTHORIZED / REGISTRY_ERROR (an answer that is not what the distribution spec says).',
    schema: ERROR_SCHEMA,
  })
  async inspect(@Query() query: unknown, @CurrentPrincipal() principal: Principal): Promise<ImageInfo> {
    const { ref, platform } = validate(inspectQuerySchema, query, 'query');
    // Refused before the registry is asked, so a refusal says nothing about what exists.
    assertRepositoriesAllowed([{ path: 'ref', reference: ref, access: 'read' }], principal, this.config);
    await assertRegistriesAllowed([{ path: 'ref', reference: ref }], this.config);
    try {
      const digest = await this.inspector.resolveDigest(ref);
      // A digest reference is not looked up in the registry (resolveDigest answers it
      // as is): keyed by repository and tenant, a hit never shows one repository's (or
      // tenant's) image to a caller who named the digest under another.
      const cacheKey = `stv:inspect:${principal.tenant}:${canonicalRepository(ref)}:${digest}:${platform ?? 'default'}`;
      const cached = await this.redis.get(cacheKey).catch(() => null);
      // The same digest may be reached by another name: report the one asked for.
      if (cached) return { ...(JSON.parse(cached) as ImageInfo), reference: formatImageReference(parseImageReference(ref)) };
      const info = await this.inspector.inspect(ref, platform);
      await this.redis.set(cacheKey, JSON.stringify(info), 'EX', CACHE_TTL_SECONDS).catch(() => undefined);
      return info;
    } catch (err) {
      const failure = toInspectFailure(err);
      if (failure instanceof JobFailure)
        throw new AppError(KIND_BY_CODE[failure.code] ?? 'upstream', failure.code, failure.message, failure.details);
      throw err;
    }
  }
}
