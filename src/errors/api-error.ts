import { HttpException } from '@nestjs/common';

/** The one error shape every client sees: {error: {code, message, details}}. */
export interface ErrorBody {
  error: { code: string; message: string; details: Record<string, unknown> };
  /** The request's id (also the x-request-id header), to find it in the logs. */
  request_id?: string;
}

/** Throw this from handlers for a precise code; other exceptions are mapped by status. */
export class ApiError extends HttpException {
  constructor(status: number, readonly code: string, message: string, readonly details: Record<string, unknown> = {}) {
    super(message, status);
  }
}

export const CODE_BY_STATUS: Record<number, string> = {
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
