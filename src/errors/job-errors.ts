import { InvalidCursorError } from '../jobs/job-store.js';
import { JobOperationError } from '../jobs/job.service.js';
import { ApiError } from './api-error.js';

const STATUS: Record<JobOperationError['code'], number> = { NOT_FOUND: 404, IDEMPOTENCY_CONFLICT: 409, JOB_FINISHED: 409, QUEUE_UNAVAILABLE: 503 };

/** Job-layer refusals as API errors; anything else passes through to the filter. */
export function toApiError(err: unknown): unknown {
  if (err instanceof JobOperationError) return new ApiError(STATUS[err.code], err.code, err.message, err.details);
  if (err instanceof InvalidCursorError) return new ApiError(400, 'VALIDATION_FAILED', 'invalid query: cursor: not a cursor this server issued', { fields: [{ path: 'cursor', message: 'not a cursor this server issued' }] });
  return err;
}

export async function mapJobErrors<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw toApiError(err);
  }
}
