import { Controller, Headers, Inject, Put, Req, Res, UseGuards } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiOkResponse, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, type Principal } from '../auth/principal.js';
import { wakeRescans } from '../catalogue/rescan-scheduler.js';
import { TrivyClient } from '../engines/trivy/trivy-client.js';
import { REDIS } from '../jobs/redis.module.js';
import { DbUploadError } from '../engines/trivy/trivy-db-upload.js';
import { AppError, type ErrorKind } from '../errors/app-error.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { TrivyDbLoadedDto } from './dto/system-info.dto.js';

const MEDIA_TYPES = ['application/x-tar', 'application/gzip', 'application/x-gzip'];
const KIND: Record<DbUploadError['code'], ErrorKind> = {
  INVALID_TRIVY_DB: 'invalid',
  TRIVY_DB_TOO_LARGE: 'too_large',
  TRIVY_SERVER_MODE: 'failed_precondition',
};

/**
 * Loading a Trivy DB into this process's cache dir, for installs that cannot download
 * one. Thin: TrivyDb (engines/trivy/trivy-db.ts) checks and installs it.
 */
@ApiTags('system')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('v1/system')
export class TrivyDbController {
  constructor(
    private readonly trivy: TrivyClient,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  @Put('trivy-db')
  @ApiOperation({
    summary: 'Load a Trivy vulnerability DB (admin token only).',
    description:
      'The body is a tar (optionally gzipped) holding exactly the regular files `trivy.db` and `metadata.json` ' +
      '(as `trivy image --download-db-only` leaves them in `<cache dir>/db`). Checked (no other entries, links or ' +
      'paths leaving the archive; metadata.json with UpdatedAt and Version 2, the schema Trivy v0.74 reads; trivy.db a bbolt file; ' +
      'at most STEVEDORE_TRIVY_DB_MAX_BYTES), then swapped in atomically: scans running meanwhile keep the DB they opened. ' +
      'It becomes the DB of the process that serves this request (`serve`: its workers too); in a split deployment ' +
      'the workers must share this Trivy cache dir (STEVEDORE_TRIVY_CACHE_DIR). The workers then compare the DB with the one ' +
      'catalogued images were scanned with and rescan them (STEVEDORE_RESCAN_INTERVAL_SECONDS). REST only.',
  })
  @ApiConsumes(...MEDIA_TYPES)
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiOkResponse({ type: TrivyDbLoadedDto, description: 'Loaded; scans from now on use it.' })
  @ApiResponse({
    status: 400,
    description: 'INVALID_TRIVY_DB: not a tar, another entry than the two files, a link, a path leaving the archive, a bad metadata.json.',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({ status: 403, description: 'Not the admin token (the DB is server-wide).', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 409,
    description: 'TRIVY_SERVER_MODE: this process scans on a Trivy server (TRIVY_SERVER_URL), which keeps its own DB.',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({ status: 413, description: 'TRIVY_DB_TOO_LARGE: over STEVEDORE_TRIVY_DB_MAX_BYTES.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 415, description: 'Not application/x-tar or application/gzip.', schema: ERROR_SCHEMA })
  async load(
    @Req() request: FastifyRequest,
    @Headers('content-type') contentType: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ): Promise<TrivyDbLoadedDto> {
    const refuse = (err: AppError) => {
      // Refused before the body was read: the rest is not waited for.
      if (!request.raw.complete) void reply.header('connection', 'close');
      return err;
    };
    if (!principal.root)
      throw refuse(new AppError('forbidden', 'FORBIDDEN', 'only the admin token may load a Trivy DB: it is server-wide'));
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (!MEDIA_TYPES.includes(type))
      throw refuse(new AppError('unsupported_media_type', 'UNSUPPORTED_MEDIA_TYPE', `send the DB as ${MEDIA_TYPES.join(' or ')}`));
    const max = this.trivy.db.maxBytes;
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > max)
      throw refuse(
        new AppError(
          'too_large',
          'TRIVY_DB_TOO_LARGE',
          `a DB of ${declared} bytes is over the limit of ${max} bytes (STEVEDORE_TRIVY_DB_MAX_BYTES)`,
        ),
      );
    const gone = new AbortController();
    request.raw.once('close', () => request.raw.complete || gone.abort());
    try {
      const loaded = await this.trivy.db.load(request.body as Readable, gone.signal);
      // The workers' rescan schedulers compare the DB's UpdatedAt now, not at their next interval.
      await wakeRescans(this.redis);
      return loaded;
    } catch (err) {
      if (err instanceof DbUploadError) throw refuse(new AppError(KIND[err.code], err.code, err.message));
      throw err;
    }
  }
}
