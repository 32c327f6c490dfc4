import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { ApiError } from '../errors/api-error.js';
import { AdminTokenVerifier } from './admin-token.verifier.js';

@Injectable()
export class AdminTokenGuard implements CanActivate {
  constructor(private readonly verifier: AdminTokenVerifier) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const verdict = this.verifier.verify(request.headers.authorization);
    if (verdict === 'missing') throw new ApiError(401, 'UNAUTHORIZED', 'missing bearer token: send Authorization: Bearer <token>');
    if (verdict === 'invalid') throw new ApiError(401, 'UNAUTHORIZED', 'invalid token');
    return true;
  }
}
