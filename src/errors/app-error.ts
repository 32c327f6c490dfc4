/**
 * What kind of refusal an error is, independent of the transport: REST maps it to an
 * HTTP status (api/api-exception.filter.ts), gRPC to a gRPC status (grpc/grpc-errors.ts),
 * each in one table.
 */
export type ErrorKind =
  | 'invalid' // a malformed or disallowed request (400)
  | 'unauthenticated' // no or a wrong token (401)
  | 'forbidden' // a token without the right to do this (403)
  | 'not_found' // nothing there, or nothing the caller may see (404)
  | 'timeout' // the request itself did not arrive in time (408)
  | 'conflict' // clashes with an earlier request (409)
  | 'failed_precondition' // not possible in the thing's current state (409)
  | 'too_large' // over a size limit (413)
  | 'unsupported_media_type' // a body of the wrong type (415)
  | 'rate_limited' // too many at once, or over a quota (429)
  | 'upstream' // a registry or other outside service failed or refused (502)
  | 'unavailable'; // a part of this server is down or busy; retry (503)

/**
 * The one error handlers, admission and services throw for a precise answer: a kind (how
 * each transport reports it), a stable `code`, a message for people and JSON details.
 * Anything else that reaches a transport is an internal error.
 */
export class AppError extends Error {
  constructor(
    readonly kind: ErrorKind,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'AppError';
  }
}
