import { status } from '@grpc/grpc-js';
import { RpcException } from '@nestjs/microservices';
import { AppError, type ErrorKind } from '../errors/app-error.js';

/** The gRPC status of each kind of AppError. */
const GRPC_STATUS: Record<ErrorKind, status> = {
  invalid: status.INVALID_ARGUMENT,
  unauthenticated: status.UNAUTHENTICATED,
  forbidden: status.PERMISSION_DENIED,
  not_found: status.NOT_FOUND,
  timeout: status.DEADLINE_EXCEEDED,
  conflict: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  too_large: status.RESOURCE_EXHAUSTED,
  unsupported_media_type: status.INVALID_ARGUMENT,
  rate_limited: status.RESOURCE_EXHAUSTED,
  upstream: status.UNAVAILABLE,
  unavailable: status.UNAVAILABLE,
};

/** A failure as a gRPC status, with the REST error's code in the message. */
export function toGrpcError(err: unknown): { code: status; message: string } | undefined {
  if (err instanceof RpcException) return err.getError() as { code: status; message: string };
  // Already a gRPC status (an error mapped once and passed through Nest's handlers again).
  if (isGrpcStatus(err)) return err;
  if (!(err instanceof AppError)) return undefined;
  return { code: GRPC_STATUS[err.kind], message: `${err.code}: ${err.message}` };
}

function isGrpcStatus(err: unknown): err is { code: status; message: string } {
  return (
    !!err &&
    typeof err === 'object' &&
    !(err instanceof Error) &&
    typeof (err as { code?: unknown }).code === 'number' &&
    typeof (err as { message?: unknown }).message === 'string'
  );
}
