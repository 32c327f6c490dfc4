import { status } from '@grpc/grpc-js';
import { RpcException } from '@nestjs/microservices';
import { ApiError } from '../errors/api-error.js';
import { toApiError } from '../errors/job-errors.js';

const BY_HTTP_STATUS: Record<number, status> = {
  400: status.INVALID_ARGUMENT,
  401: status.UNAUTHENTICATED,
  403: status.PERMISSION_DENIED,
  404: status.NOT_FOUND,
  413: status.RESOURCE_EXHAUSTED,
  429: status.RESOURCE_EXHAUSTED,
  502: status.UNAVAILABLE,
  503: status.UNAVAILABLE,
};
const BY_CODE: Record<string, status> = {
  IDEMPOTENCY_CONFLICT: status.ALREADY_EXISTS,
  JOB_FINISHED: status.FAILED_PRECONDITION,
};

/** The REST error of a failure, as a gRPC status with the same code in the message. */
export function toGrpcError(err: unknown): { code: status; message: string } | undefined {
  if (err instanceof RpcException) return err.getError() as { code: status; message: string };
  // Already a gRPC status (an error mapped once and passed through Nest's handlers again).
  if (isGrpcStatus(err)) return err;
  const apiError = toApiError(err);
  if (!(apiError instanceof ApiError)) return undefined;
  const code = BY_CODE[apiError.code] ?? BY_HTTP_STATUS[apiError.getStatus()] ?? status.UNKNOWN;
  return { code, message: `${apiError.code}: ${apiError.message}` };
}

function isGrpcStatus(err: unknown): err is { code: status; message: string } {
  return !!err && typeof err === 'object' && !(err instanceof Error) && typeof (err as { code?: unknown }).code === 'number' && typeof (err as { message?: unknown }).message === 'string';
}
