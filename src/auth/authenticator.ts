import { Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ApiKeyStore } from './api-key-store.js';
import { ADMIN_TENANT, SCOPES, type Principal } from './principal.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Why a caller was refused; REST and gRPC map it to their own status. */
export class AuthFailure extends Error {
  constructor(
    readonly code: 'UNAUTHORIZED' | 'RATE_LIMITED',
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AuthFailure';
  }
}

/**
 * Turns an `Authorization: Bearer <token>` value into a Principal, for REST and gRPC:
 * the admin token (tenant `default`, every scope, no Redis round trip) or an API key
 * (its tenant and scopes, rate-limited per key).
 */
@Injectable()
export class Authenticator {
  private readonly adminDigest?: Buffer;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly apiKeys: ApiKeyStore,
  ) {
    if (config.adminToken) this.adminDigest = digest(config.adminToken);
  }

  async authenticate(authorization: string | undefined): Promise<Principal> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) throw new AuthFailure('UNAUTHORIZED', 'missing bearer token: send Authorization: Bearer <token>');
    // Compare digests so the comparison takes the same time whatever the length.
    if (this.adminDigest && timingSafeEqual(digest(token), this.adminDigest)) return { tenant: ADMIN_TENANT, scopes: SCOPES, root: true };
    if (!token.startsWith('stvk_')) throw new AuthFailure('UNAUTHORIZED', 'invalid token');
    const found = await this.apiKeys.check(token);
    if (!found) throw new AuthFailure('UNAUTHORIZED', 'invalid token');
    if (found.retryAfterSeconds !== undefined) {
      throw new AuthFailure(
        'RATE_LIMITED',
        `rate limit of ${found.limitPerMinute} requests per minute exceeded; retry in ${found.retryAfterSeconds} s`,
        found.retryAfterSeconds,
      );
    }
    const { record } = found;
    const limits = { rate_limit_per_minute: record.rate_limit_per_minute ?? null, max_concurrent_jobs: record.max_concurrent_jobs ?? null };
    return {
      tenant: record.tenant,
      scopes: record.scopes,
      keyId: record.id,
      limits,
      ...(record.repositories ? { repositories: record.repositories } : {}),
    };
  }
}
