import { Inject, Injectable } from '@nestjs/common';
import { createHash, timingSafeEqual } from 'node:crypto';
import { APP_CONFIG } from '../../config/config.module.js';
import type { AppConfig } from '../../config/config.js';

const digest = (value: string) => createHash('sha256').update(value).digest();

export type TokenVerdict = 'ok' | 'missing' | 'invalid';

/**
 * Checks an `Authorization: Bearer <token>` value against the admin token, for both
 * REST and gRPC. Tenants and scoped API keys come in a later issue.
 */
@Injectable()
export class AdminTokenVerifier {
  private readonly expected?: Buffer;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    if (config.adminToken) this.expected = digest(config.adminToken);
  }

  verify(authorization: string | undefined): TokenVerdict {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) return 'missing';
    // Compare digests so the comparison takes the same time whatever the length.
    return this.expected && timingSafeEqual(digest(token), this.expected) ? 'ok' : 'invalid';
  }
}
