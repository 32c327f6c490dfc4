import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { AppError, type ErrorKind } from '../errors/app-error.js';

/** The one error shape every REST client sees: {error: {code, message, details}}. */
export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
  /** The request's id (also the x-request-id header), to find it in the logs. */
  request_id?: string;
}

/** The HTTP status of each kind of AppError. */
export const HTTP_STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  timeout: 408,
  conflict: 409,
  failed_precondition: 409,
  too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  upstream: 502,
  unavailable: 503,
};

/** The code of an HTTP error that is not an AppError (Nest's and Fastify's own). */
const CODE_BY_STATUS: Record<number, string> = {
  400: 'INVALID_REQUEST',
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE',
  429: 'RATE_LIMITED',
  503: 'NOT_READY',
};

/**
 * Maps every exception to the one error shape. Client errors keep their message;
 * anything unexpected becomes a 500 with a generic message and is logged, so no stack
 * trace or internal detail ever reaches a client.
 */
@Catch()
export class ApiExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('ApiExceptionFilter');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const request = host.switchToHttp().getRequest<{ id?: string }>();
    sendError(host.switchToHttp().getResponse<FastifyReply>(), request?.id, exception, this.logger);
  }
}

/**
 * Answers `exception` in the one error shape: the filter's answer, and the answer of the
 * routes served outside Nest (api/submit-route.ts). A 429 with retry_after_seconds also
 * gets its Retry-After header.
 */
export function sendError(reply: FastifyReply, requestId: string | undefined, exception: unknown, logger: Pick<Logger, 'error'>): void {
  const { status, body } = toErrorBody(exception);
  if (requestId) body.request_id = String(requestId);
  if (status >= 500 && status !== 503) logger.error(exception instanceof Error ? exception.stack : String(exception));
  const retryAfter = body.error.details.retry_after_seconds;
  if (status === 429 && typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  void reply.status(status).header('content-type', 'application/json; charset=utf-8').send(body);
}

export function toErrorBody(exception: unknown): { status: number; body: ErrorBody } {
  if (exception instanceof AppError) {
    return {
      status: HTTP_STATUS[exception.kind],
      body: { error: { code: exception.code, message: exception.message, details: exception.details } },
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    if (status === 503 && typeof response === 'object' && response && 'error' in response && 'status' in response) {
      // terminus readiness result: name the failing parts in the message
      const failing = Object.keys((response as { error: Record<string, unknown> }).error ?? {});
      return {
        status,
        body: { error: { code: 'NOT_READY', message: `not ready: ${failing.join(', ') || 'unknown'} unavailable`, details: response } },
      };
    }
    const message = typeof response === 'string' ? response : (messageOf(response) ?? exception.message);
    return {
      status,
      body: { error: { code: CODE_BY_STATUS[status] ?? (status < 500 ? 'INVALID_REQUEST' : 'INTERNAL'), message, details: {} } },
    };
  }
  // Fastify's own client errors (bad JSON, wrong content type, body too large) carry a 4xx statusCode.
  const fastifyError = exception as { statusCode?: number; code?: string; message?: string };
  if (typeof fastifyError?.statusCode === 'number' && fastifyError.statusCode >= 400 && fastifyError.statusCode < 500) {
    const status = fastifyError.statusCode;
    return {
      status,
      body: {
        error: {
          code: CODE_BY_STATUS[status] ?? 'INVALID_REQUEST',
          message: fastifyError.message ?? 'bad request',
          details: fastifyError.code ? { cause: fastifyError.code } : {},
        },
      },
    };
  }
  if (isRedisUnavailable(exception)) {
    return {
      status: 503,
      body: { error: { code: 'REDIS_UNAVAILABLE', message: 'the job store (Redis) is unavailable; retry shortly', details: {} } },
    };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; see the server log', details: {} } } };
}

/**
 * ioredis errors while Redis is down or reconnecting (no offline queue: they fail fast),
 * or up but not answering within the command time limit.
 */
function isRedisUnavailable(err: unknown): boolean {
  const e = err as { name?: string; message?: string };
  return (
    e?.name === 'MaxRetriesPerRequestError' ||
    /Stream isn't writeable|Connection is closed|connect ECONNREFUSED|^Command timed out$/.test(e?.message ?? '')
  );
}

function messageOf(response: object): string | undefined {
  const m = (response as { message?: unknown }).message;
  if (typeof m === 'string') return m;
  if (Array.isArray(m)) return m.join('; ');
  return undefined;
}
