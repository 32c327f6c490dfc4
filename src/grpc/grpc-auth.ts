import { Injectable } from '@nestjs/common';
import { RpcException } from '@nestjs/microservices';
import { status, type Metadata } from '@grpc/grpc-js';
import { AdminTokenVerifier } from '../api/auth/admin-token.verifier.js';

/** gRPC counterpart of AdminTokenGuard: `authorization: Bearer <token>` metadata. */
@Injectable()
export class GrpcAuth {
  constructor(private readonly verifier: AdminTokenVerifier) {}

  assertAdmin(metadata: Metadata): void {
    const verdict = this.verifier.verify(String(metadata.get('authorization')[0] ?? ''));
    if (verdict === 'missing') throw new RpcException({ code: status.UNAUTHENTICATED, message: 'missing bearer token: send authorization: Bearer <token> metadata' });
    if (verdict === 'invalid') throw new RpcException({ code: status.UNAUTHENTICATED, message: 'invalid token' });
  }
}
