import { z } from 'zod';
import { ACTION_TABLE, ACTIONS } from './actions.js';
import { JOB_STATES } from './job-types.js';
import { imageReferenceSchema, platformSchema } from './request-fields.js';

/** Job requests (one schema per action) are rows of jobs/actions.ts; the other inputs of the job API are here. */
export { jobRequestSchema } from './actions.js';
export const inspectJobSchema = ACTION_TABLE.inspect.schema;

/** The action field alone, checked first so an action not available yet gets its own answer. */
export const actionSchema = z.object({ action: z.enum(ACTIONS, { error: `must be one of ${ACTIONS.join(', ')}` }) });

export const listJobsQuerySchema = z
  .object({
    state: z.enum(JOB_STATES as [string, ...string[]], { error: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
    action: z.enum(ACTIONS, { error: `must be one of ${ACTIONS.join(', ')}` }).optional(),
    limit: z.coerce
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(1, 'must be 1-100')
      .max(100, 'must be 1-100')
      .default(20),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export const eventsQuerySchema = z
  .object({ follow: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true') })
  .strict();

export const inspectQuerySchema = z.object({ ref: imageReferenceSchema, platform: platformSchema.optional() }).strict();

/** `Idempotency-Key`: printable, bounded, so it is safe as part of a Redis key. */
export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 printable ASCII characters without spaces');
