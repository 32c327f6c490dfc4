import { Controller, Headers, Inject, Logger, Post, Req, Res, UseGuards } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { ContextError, ContextStore } from '../contexts/context-store.js';
import { ContextOwners } from '../contexts/context-owners.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError, type ErrorKind } from '../errors/app-error.js';

export const CONTEXT_MEDIA_TYPES = ['application/x-tar', 'application/gzip', 'application/x-gzip'] as const;
const KIND: Record<ContextError['code'], ErrorKind> = {
  CONTEXT_TOO_LARGE: 'too_large',
  INVALID_CONTEXT: 'invalid',
  CONTEXT_NOT_FOUND: 'invalid',
  CONTEXT_QUOTA_EXCEEDED: 'rate_limited',
  UPLOAD_TIMEOUT: 'timeout',
  // Nobody reads this answer: the client is gone.
  UPLOAD_ABORTED: 'invalid',
  UNPACKER_BUSY: 'unavailable',
};
// Uploads of one tenant at once, per api process: a tenant's slow or hostile uploads
// take its own turns, not everyone's unpackers and connections.
const MAX_UPLOADS_PER_TENANT = 4;

function toContextAppError(err: unknown): unknown {
  return err instanceof ContextError ? new AppError(KIND[err.code], err.code, err.message) : err;
}

@ApiTags('contexts')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:write')
@Controller('v1/contexts')
export class ContextsController {
  private readonly logger = new Logger('Contexts');
  private readonly inFlight = new Map<string, number>();
  private readonly quotaTurns = new Map<string, Promise<void>>();

  constructor(
    private readonly contexts: ContextStore,
    private readonly owners: ContextOwners,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @ApiOperation({
    summary: 'Upload a build context (tar or tar.gz). Stored content-addressed; use the digest as `context: {upload: digest}` in a build.',
    description:
      'Entries with absolute paths, `..`, links that leave the context, or ' +
      'device files are refused; setuid, setgid and sticky bits are dropped. ' +
      'Limits: STEVEDORE_CONTEXT_MAX_BYTES as sent, STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES and ' +
      'STEVEDORE_CONTEXT_MAX_ENTRIES unpacked, STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS in all, ' +
      "and the tenant's STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES. Unused contexts are deleted after STEVEDORE_CONTEXT_TTL_SECONDS.",
  })
  @ApiConsumes(...CONTEXT_MEDIA_TYPES)
  @ApiBody({ schema: { type: 'string', format: 'binary' } })
  @ApiResponse({
    status: 201,
    description: 'Stored.',
    schema: {
      type: 'object',
      required: ['digest', 'size_bytes'],
      properties: { digest: { type: 'string', example: 'sha256:…' }, size_bytes: { type: 'integer' } },
    },
  })
  @ApiResponse({ status: 200, description: 'The same bytes were uploaded before.' })
  @ApiResponse({
    status: 400,
    description: 'INVALID_CONTEXT: not a tar (or data appended after its end), an entry that would escape the context, or a path too long.',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({
    status: 408,
    description: 'UPLOAD_TIMEOUT: the body did not arrive within STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS.',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({
    status: 413,
    description:
      'CONTEXT_TOO_LARGE: over STEVEDORE_CONTEXT_MAX_BYTES as sent, over STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES ' +
      'or STEVEDORE_CONTEXT_MAX_ENTRIES unpacked, or not unpacked within the time limit.',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({ status: 415, description: 'Not application/x-tar or application/gzip.', schema: ERROR_SCHEMA })
  @ApiResponse({
    status: 429,
    description:
      "CONTEXT_QUOTA_EXCEEDED: the tenant's contexts would take more than STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES unpacked " +
      '(details: quota_bytes, used_bytes). TOO_MANY_UPLOADS: the tenant has 4 uploads in progress already (Retry-After).',
    schema: ERROR_SCHEMA,
  })
  @ApiResponse({
    status: 503,
    description: 'UNPACKER_BUSY: every context unpacker stayed busy for the upload time limit; retry.',
    schema: ERROR_SCHEMA,
  })
  async upload(
    @Req() request: FastifyRequest,
    @Headers('content-type') contentType: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ) {
    const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (!(CONTEXT_MEDIA_TYPES as readonly string[]).includes(type)) {
      throw new AppError('unsupported_media_type', 'UNSUPPORTED_MEDIA_TYPE', `send the context as ${CONTEXT_MEDIA_TYPES.join(' or ')}`);
    }
    // A declared size over the limit gets its 413 before a byte is read.
    const declared = Number(request.headers['content-length'] ?? 0);
    if (declared > this.config.contextMaxBytes)
      throw new AppError(
        'too_large',
        'CONTEXT_TOO_LARGE',
        `context of ${declared} bytes is over the ${this.config.contextMaxBytes}-byte limit`,
      );
    const tenant = principal.tenant;
    const running = this.inFlight.get(tenant) ?? 0;
    if (running >= MAX_UPLOADS_PER_TENANT) {
      void reply.header('connection', 'close').header('retry-after', '5');
      throw new AppError(
        'rate_limited',
        'TOO_MANY_UPLOADS',
        `the tenant already has ${running} context uploads in progress (at ` +
          `most ${MAX_UPLOADS_PER_TENANT} at once); retry when one has finished`,
      );
    }
    this.inFlight.set(tenant, running + 1);
    try {
      return await this.store(request, type, reply, tenant);
    } finally {
      const left = (this.inFlight.get(tenant) ?? 1) - 1;
      if (left > 0) this.inFlight.set(tenant, left);
      else this.inFlight.delete(tenant);
    }
  }

  /**
   * A tenant's uploads are unpacked against its quota one at a time (per process): each
   * gets what is left after the one before was counted, so parallel uploads cannot each
   * spend the same remainder. Resolves, in turn, with the release.
   */
  private async quotaTurn(tenant: string): Promise<() => void> {
    const previous = this.quotaTurns.get(tenant) ?? Promise.resolve();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => gate);
    this.quotaTurns.set(tenant, chained);
    await previous;
    return () => {
      release();
      if (this.quotaTurns.get(tenant) === chained) this.quotaTurns.delete(tenant);
    };
  }

  private async store(request: FastifyRequest, type: string, reply: FastifyReply, tenant: string) {
    const quota = this.config.tenantContextQuotaBytes;
    let used = quota > 0 ? await this.owners.usage(tenant) : 0;
    const overQuota = (extra: string) =>
      new AppError(
        'rate_limited',
        'CONTEXT_QUOTA_EXCEEDED',
        `the tenant's build contexts take ${used} of its ${quota} bytes${extra}; ` +
          `unused ones are deleted after ${this.config.contextTtlSeconds} s`,
        { quota_bytes: quota, used_bytes: used },
      );
    let release: (() => void) | undefined;
    const budget = async () => {
      release = await this.quotaTurn(tenant);
      used = await this.owners.usage(tenant);
      if (used >= quota) throw overQuota('');
      return quota - used;
    };
    try {
      if (quota > 0 && used >= quota) throw overQuota('');
      const stored = await this.contexts.put(
        request.body as Readable,
        type === 'application/x-tar' ? 'application/x-tar' : 'application/gzip',
        { budgetBytes: quota > 0 ? budget : undefined },
      );
      // The same bytes were stored before (by anyone): charged now unless the tenant holds them already.
      if (quota > 0 && !stored.created && used + stored.expanded_bytes > quota && !(await this.owners.owns(tenant, stored.digest))) {
        throw overQuota(`, and this one unpacks to ${stored.expanded_bytes}`);
      }
      await this.owners.add(tenant, stored.digest, stored.expanded_bytes);
      void reply.status(stored.created ? 201 : 200);
      return { digest: stored.digest, size_bytes: stored.size_bytes };
    } catch (err) {
      // Refused before the whole body was read: the rest is not waited for.
      if (!request.raw.complete) void reply.header('connection', 'close');
      if (err instanceof ContextError && err.code === 'UPLOAD_ABORTED') this.logger.warn(`tenant ${tenant}: ${err.message}`);
      if (err instanceof ContextError && err.code === 'CONTEXT_QUOTA_EXCEEDED')
        throw overQuota(', and this one unpacks to more than what is left');
      throw toContextAppError(err);
    } finally {
      release?.();
    }
  }
}
