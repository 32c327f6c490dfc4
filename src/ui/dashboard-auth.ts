import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { AuthFailure, Authenticator } from '../auth/authenticator.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { REDIS } from '../jobs/redis.module.js';
import { LOGIN_ATTEMPTS, LOGIN_WINDOW_SECONDS, LoginLimiter } from './login-limiter.js';
import { readCookie, SESSION_COOKIE, SessionStore } from './session.js';

export type DashboardAccess =
  { ok: true; via: 'bearer' | 'cookie' } | { ok: false; status: 401 | 403 | 429; message: string; retryAfterSeconds?: number };

type RequestLike = Pick<FastifyRequest, 'method' | 'headers'>;

/** Methods a session cookie may authorise: a cookie rides along on cross-site requests, so it never authorises a change. */
const SAFE_METHODS = new Set(['GET', 'HEAD']);

/**
 * Who may use the dashboard (bull-board at /admin/queues and the /ui pages): the
 * operator only, i.e. the admin token — as a bearer header (scripts) or through a
 * login session cookie (browsers, which cannot send headers from links or EventSource).
 * Tenants' API keys never get in: bull-board shows every tenant's queue entries.
 */
@Injectable()
export class DashboardAuth {
  private readonly sessions: SessionStore;
  private readonly limiter: LoginLimiter;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly authenticator: Authenticator,
    @Inject(REDIS) redis: Redis,
  ) {
    // Without an admin token nobody is the operator: every login fails.
    this.sessions = new SessionStore(redis, config.adminToken);
    this.limiter = new LoginLimiter(redis);
  }

  async check(request: RequestLike): Promise<DashboardAccess> {
    const authorization = request.headers.authorization;
    if (authorization) return this.bearer(authorization);
    const session = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (session && SAFE_METHODS.has(request.method) && (await this.sessions.verify(session))) return { ok: true, via: 'cookie' };
    return { ok: false, status: 401, message: 'log in at /ui/login with the admin token, or send Authorization: Bearer <admin token>' };
  }

  /**
   * A session cookie value for the admin token; a refusal for anything else. `address`
   * is the client's: past LOGIN_ATTEMPTS attempts a minute it gets 429 without its
   * token being looked at, the right one included.
   */
  async login(
    token: unknown,
    address: string,
  ): Promise<{ session: string } | { status: 401 | 403 | 429; message: string; retryAfterSeconds?: number }> {
    const wait = await this.limiter.attempt(address);
    if (wait > 0)
      return {
        status: 429,
        message: `more than ${LOGIN_ATTEMPTS} login attempts in ${LOGIN_WINDOW_SECONDS} s from this address; retry in ${wait} s`,
        retryAfterSeconds: wait,
      };
    if (typeof token !== 'string' || !token || token.length > 4096 || /\s/.test(token))
      return { status: 401, message: 'enter the admin token' };
    const access = await this.bearer(`Bearer ${token}`);
    if (!access.ok) return access;
    const session = await this.sessions.issue();
    if (!session) return { status: 401, message: 'the dashboard needs an admin token (STEVEDORE_TOKEN)' };
    await this.limiter.succeeded(address);
    return { session };
  }

  /** Logout: the session is deleted on the server, not only forgotten by this browser. */
  async logout(request: RequestLike): Promise<void> {
    await this.sessions.revoke(readCookie(request.headers.cookie, SESSION_COOKIE));
  }

  private async bearer(authorization: string): Promise<DashboardAccess> {
    try {
      const principal = await this.authenticator.authenticate(authorization);
      if (principal.root) return { ok: true, via: 'bearer' };
      return { ok: false, status: 403, message: 'the dashboard is for the operator: API keys cannot open it, only the admin token' };
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      return { ok: false, status: err.code === 'RATE_LIMITED' ? 429 : 401, message: err.message };
    }
  }
}

/**
 * A browser's state-changing request must come from our own pages: the Origin header
 * (sent by browsers on every POST) names this host, and Sec-Fetch-Site, when sent, says
 * same-origin. Clients that send neither (curl) are not a cross-site forgery risk.
 */
export function isSameOrigin(request: RequestLike): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = request.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === request.headers.host;
  } catch {
    return false;
  }
}

/** Where a refused browser goes: the login page, coming back to a local path afterwards. */
export function loginLocation(url: string): string {
  return `/ui/login?next=${encodeURIComponent(safeNext(url))}`;
}

/** Only local absolute paths: `next` must never send the operator to another site. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : '/admin/queues';
}

/** Answers a refusal: a redirect to the login page for a page load, the JSON error otherwise. */
export function refuse(request: FastifyRequest, reply: FastifyReply, access: Extract<DashboardAccess, { ok: false }>): FastifyReply {
  const wantsPage = SAFE_METHODS.has(request.method) && /text\/html/.test(request.headers.accept ?? '');
  if (access.status === 401 && wantsPage) return reply.redirect(loginLocation(request.url), 302);
  const code = access.status === 401 ? 'UNAUTHORIZED' : access.status === 403 ? 'FORBIDDEN' : 'RATE_LIMITED';
  if (access.retryAfterSeconds !== undefined) void reply.header('retry-after', String(access.retryAfterSeconds));
  return reply
    .status(access.status)
    .header('cache-control', 'no-store')
    .send({ error: { code, message: access.message, details: {} }, request_id: String(request.id) });
}
