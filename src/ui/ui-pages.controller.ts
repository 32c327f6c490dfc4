import { Body, Controller, Get, HttpCode, Param, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { JOB_JS } from './assets/job-client.js';
import { LOGIN_HTML, LOGIN_JS } from './assets/login-page.js';
import { STYLE_CSS } from './assets/style.js';
import { DashboardAuth, isSameOrigin, safeNext } from './dashboard-auth.js';
import { SESSION_TTL_SECONDS, sessionCookie } from './session.js';

/**
 * What every dashboard answer carries: scripts and styles from this origin only (no
 * inline code, no CDN), no framing, no referrer to elsewhere.
 */
export const PAGE_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

const ASSETS: Record<string, { type: string; body: string }> = {
  'style.css': { type: 'text/css; charset=utf-8', body: STYLE_CSS },
  'login.js': { type: 'text/javascript; charset=utf-8', body: LOGIN_JS },
  'job.js': { type: 'text/javascript; charset=utf-8', body: JOB_JS },
};

export const sendPage = (reply: FastifyReply, html: string, status = 200) =>
  reply
    .status(status)
    .headers({ ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' })
    .send(html);

/** The dashboard's public part: login, logout and the static assets. */
@ApiExcludeController()
@Controller('ui')
export class UiPagesController {
  constructor(private readonly auth: DashboardAuth) {}

  @Get()
  root(@Res() reply: FastifyReply) {
    return reply.redirect('/admin/queues', 302);
  }

  @Get('login')
  loginPage(@Res() reply: FastifyReply) {
    return sendPage(reply, LOGIN_HTML);
  }

  /** JSON `{token, next}` from login.js; sets the session cookie. Only the admin token logs in. */
  @Post('login')
  @HttpCode(200)
  async login(@Body() body: unknown, @Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply) {
    if (!isSameOrigin(request)) throw new AppError('forbidden', 'FORBIDDEN', 'cross-site login refused');
    const { token, next } = (typeof body === 'object' && body !== null ? body : {}) as { token?: unknown; next?: unknown };
    const result = await this.auth.login(token, request.ip);
    if ('status' in result) {
      if (result.retryAfterSeconds !== undefined) void reply.header('retry-after', String(result.retryAfterSeconds));
      throw result.status === 403
        ? new AppError('forbidden', 'FORBIDDEN', result.message)
        : result.status === 429
          ? new AppError(
              'rate_limited',
              'RATE_LIMITED',
              result.message,
              result.retryAfterSeconds ? { retry_after_seconds: result.retryAfterSeconds } : {},
            )
          : new AppError('unauthenticated', 'UNAUTHORIZED', result.message);
    }
    void reply
      .header('set-cookie', sessionCookie(result.session, SESSION_TTL_SECONDS, request.protocol === 'https'))
      .header('cache-control', 'no-store');
    return { next: safeNext(next), expires_in: SESSION_TTL_SECONDS };
  }

  @Post('logout')
  @HttpCode(204)
  async logout(@Req() request: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): Promise<void> {
    if (!isSameOrigin(request)) throw new AppError('forbidden', 'FORBIDDEN', 'cross-site logout refused');
    await this.auth.logout(request);
    void reply.header('set-cookie', sessionCookie('', 0, request.protocol === 'https'));
  }

  @Get('assets/:name')
  asset(@Param('name') name: string, @Res() reply: FastifyReply) {
    const asset = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (!asset) throw new AppError('not_found', 'NOT_FOUND', 'no such asset');
    return reply.headers({ ...PAGE_HEADERS, 'content-type': asset.type, 'cache-control': 'no-cache' }).send(asset.body);
  }
}
