import { Inject, Injectable } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AuthFailure, Authenticator } from '../auth/authenticator.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { readCookie, SESSION_COOKIE, SessionSigner } from './session.js';

export type DashboardAccess = { ok: true; via: 'bearer' | 'cookie' } | { ok: false; status: 401 | 403 | 429; message: string };

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
  private readonly signer?: SessionSigner;

  constructor(
    @Inject(APP_CONFIG) config: AppConfig,
    private readonly authenticator: Authenticator,
  ) {
    // Without an admin token nobody is the operator: every login fails.
    if (config.adminToken) this.signer = new SessionSigner(config.adminToken);
  }

  async check(request: RequestLike): Promise<DashboardAccess> {
    const authorization = request.headers.authorization;
    if (authorization) return this.bearer(authorization);
    const session = readCookie(request.headers.cookie, SESSION_COOKIE);
    if (session && SAFE_METHODS.has(request.method) && this.signer?.verify(session)) return { ok: true, via: 'cookie' };
    return { ok: false, status: 401, message: 'log in at /ui/login with the admin token, or send Authorization: Bearer <admin token>' };
  }

  /** A session cookie value for the admin token; a refusal for anything else. */
  async login(token: unknown): Promise<{ session: string } | { status: 401 | 403 | 429; message: string }> {
    if (typeof token !== 'string' || !token || token.length > 4096 || /\s/.test(token))
      return { status: 401, message: 'enter the admin token' };
    const access = await this.bearer(`Bearer ${token}`);
    if (!access.ok) return access;
    return this.signer
      ? { session: this.signer.issue() }
      : { status: 401, message: 'the dashboard needs an admin token (STEVEDORE_TOKEN)' };
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
  return reply
    .status(access.status)
    .header('cache-control', 'no-store')
    .send({ error: { code, message: access.message, details: {} }, request_id: String(request.id) });
}
