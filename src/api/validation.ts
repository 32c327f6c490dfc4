import type { z } from 'zod';
import { ApiError } from './errors/api-error.js';

/** Parses with a zod schema; a failure is a 400 listing every field path and what is wrong. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'header'): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((issue) => ({
    path: issue.path.length ? issue.path.join('.') : (issue.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys?.join(',') : '') || where,
    message: issue.message,
  }));
  throw new ApiError(400, 'VALIDATION_FAILED', `invalid ${where}: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, { fields });
}
