import { AppError } from '../errors/app-error.js';
import { invalidFields, validate } from '../errors/validation.js';
import { BUILD_LIMITS } from '../jobs/build-request.schema.js';
import { actionSchema, jobRequestSchema } from '../jobs/job-request.schema.js';
import type { JobRequest } from '../jobs/job-types.js';

/** Action first (an unknown action is named as such, not as a schema mismatch), then its schema. */
export function parseJobRequest(body: unknown): JobRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('invalid', 'VALIDATION_FAILED', 'invalid body: must be a JSON object', {
      fields: [{ path: 'body', message: 'must be a JSON object' }],
    });
  }
  validate(actionSchema, { action: (body as { action?: unknown }).action }, 'body');
  refuseHugeMaps(body as Record<string, unknown>);
  return validate(jobRequestSchema, body, 'body');
}

/**
 * The schema bounds build_args and labels too, but only after checking every entry: a
 * 10 MB body of 400 000 build args kept the event loop busy for about a second. Counted
 * first, such a body is refused at once with the same answer.
 */
function refuseHugeMaps(body: Record<string, unknown>): void {
  for (const [field, max] of [
    ['build_args', BUILD_LIMITS.buildArgs],
    ['labels', BUILD_LIMITS.labels],
  ] as const) {
    const value = body[field];
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
    let n = 0;
    for (const _ in value) if (++n > max) break;
    if (n > max) throw invalidFields([{ path: field, message: `at most ${max} entries` }]);
  }
}
