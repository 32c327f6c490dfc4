import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** The dashboard's session cookie: HttpOnly, SameSite=Strict, on every path (/ui and /admin/queues). */
export const SESSION_COOKIE = 'stv_session';
export const SESSION_TTL_SECONDS = 8 * 3600;

/** A session id as issued: 32 random bytes, base64url. */
const SESSION_ID = /^[A-Za-z0-9_-]{43}$/;

/** The subset of ioredis the session store and the login limiter use. */
export type SessionRedis = Pick<Redis, 'get' | 'set' | 'del' | 'eval'>;

/**
 * Server-side sessions: the cookie holds a random id; Redis holds, under the id's
 * SHA-256 (never the id itself), the generation of the admin token it was issued for,
 * with the session's lifetime as TTL. So logout deletes the session (a copied cookie
 * is dead too), every process of the deployment sees the same sessions, and rotating
 * the admin token ends them all: a session of another generation is refused and deleted.
 */
export class SessionStore {
  private readonly generation?: string;

  constructor(
    private readonly redis: SessionRedis,
    adminToken: string | undefined,
    private readonly ttlSeconds = SESSION_TTL_SECONDS,
  ) {
    // Keyed, so the stored value says nothing usable about the token.
    if (adminToken) this.generation = createHmac('sha256', adminToken).update('stevedore dashboard session generation v2').digest('hex');
  }

  /** A new session for the operator; undefined without an admin token (nobody is the operator). */
  async issue(): Promise<string | undefined> {
    if (!this.generation) return undefined;
    const id = randomBytes(32).toString('base64url');
    await this.redis.set(key(id), this.generation, 'EX', this.ttlSeconds);
    return id;
  }

  /** True for a live session issued for the current admin token. */
  async verify(value: string | undefined): Promise<boolean> {
    if (!this.generation || !value || !SESSION_ID.test(value)) return false;
    const stored = await this.redis.get(key(value));
    if (stored === null) return false;
    if (stored === this.generation) return true;
    // Issued for an admin token that has been rotated away.
    await this.redis.del(key(value));
    return false;
  }

  /** Ends a session (logout); unknown or malformed values are ignored. */
  async revoke(value: string | undefined): Promise<void> {
    if (value && SESSION_ID.test(value)) await this.redis.del(key(value));
  }
}

const key = (id: string) => `stv:ui:session:${createHash('sha256').update(id).digest('hex')}`;

/** One cookie's value from a Cookie header (no dependency for a single name). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** Set-Cookie for a session (or, with maxAge 0, for clearing it). Secure when served over TLS. */
export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    `Max-Age=${maxAgeSeconds}`,
    'HttpOnly',
    'SameSite=Strict',
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
