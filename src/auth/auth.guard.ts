import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors/app-error.js';
import { AuthFailure, Authenticator } from './authenticator.js';
import { hasScope, REQUIRED_SCOPE, type Principal, type Scope } from './principal.js';

/** Authenticates the caller and checks the route's scope (`@RequireScope`, default admin). */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly authenticator: Authenticator,
    private readonly reflector: Reflector,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest & { principal?: Principal }>();
    let principal: Principal;
    try {
      principal = await this.authenticator.authenticate(request.headers.authorization);
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      if (err.code === 'RATE_LIMITED') {
        void context.switchToHttp().getResponse<FastifyReply>().header('retry-after', String(err.retryAfterSeconds));
        throw new AppError('rate_limited', 'RATE_LIMITED', err.message, { retry_after_seconds: err.retryAfterSeconds });
      }
      throw new AppError('unauthenticated', 'UNAUTHORIZED', err.message);
    }
    const scope =
      this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, [context.getHandler(), context.getClass()]) ?? 'admin';
    if (!hasScope(principal, scope))
      throw new AppError('forbidden', 'FORBIDDEN', `this API key lacks the ${scope} scope`, { required_scope: scope });
    request.principal = principal;
    return true;
  }
}
