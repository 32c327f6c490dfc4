import { createHmac, timingSafeEqual } from 'node:crypto';

/** The dashboard's session cookie: HttpOnly, SameSite=Strict, on every path (/ui and /admin/queues). */
export const SESSION_COOKIE = 'stv_session';
export const SESSION_TTL_SECONDS = 8 * 3600;

interface SessionPayload {
  /** Who logged in: only the operator (the admin token) can. */
  sub: 'admin';
  /** Expiry, epoch seconds. */
  exp: number;
}

/**
 * Stateless sessions: `<payload>.<HMAC-SHA256>`, base64url. The key is derived from the
 * admin token, so rotating the token ends every session; nothing is stored server-side.
 */
export class SessionSigner {
  private readonly key: Buffer;

  constructor(adminToken: string) {
    this.key = createHmac('sha256', adminToken).update('stevedore dashboard session v1').digest();
  }

  issue(nowSeconds = Math.floor(Date.now() / 1000), ttlSeconds = SESSION_TTL_SECONDS): string {
    const payload: SessionPayload = { sub: 'admin', exp: nowSeconds + ttlSeconds };
    const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** True for an untampered, unexpired session. */
  verify(value: string | undefined, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
    if (!value || value.length > 512) return false;
    const [body, mac, extra] = value.split('.');
    if (!body || !mac || extra !== undefined) return false;
    const want = Buffer.from(this.mac(body));
    const got = Buffer.from(mac);
    if (got.length !== want.length || !timingSafeEqual(got, want)) return false;
    try {
      const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<SessionPayload>;
      return payload.sub === 'admin' && typeof payload.exp === 'number' && payload.exp > nowSeconds;
    } catch {
      return false;
    }
  }

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(body).digest('base64url');
  }
}

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
