import { Injectable } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status, type Metadata } from '@grpc/grpc-js';
import { AuthFailure, Authenticator } from '../auth/authenticator.js';
import { hasScope, type Principal, type Scope } from '../auth/principal.js';

/** gRPC counterpart of AuthGuard: `authorization: Bearer <token>` metadata and a scope. */
@Injectable()
export class GrpcAuth {
  constructor(private readonly authenticator: Authenticator) {}

  async authorize(metadata: Metadata, scope: Scope): Promise<Principal> {
    let principal: Principal;
    try {
      principal = await this.authenticator.authenticate(String(metadata.get('authorization')[0] ?? ''));
    } catch (err) {
      if (!(err instanceof AuthFailure)) throw err;
      throw new RpcException({
        code: err.code === 'RATE_LIMITED' ? status.RESOURCE_EXHAUSTED : status.UNAUTHENTICATED,
        message: err.message,
      });
    }
    if (!hasScope(principal, scope))
      throw new RpcException({ code: status.PERMISSION_DENIED, message: `this API key lacks the ${scope} scope` });
    return principal;
  }
}
