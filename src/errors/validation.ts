import type { z } from 'zod';
import { AppError } from './app-error.js';

const MAX_FIELDS = 100;

/** Parses with a zod schema; a failure is VALIDATION_FAILED listing every field path and what is wrong. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'header'): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.map((issue) => ({
    path: issue.path.length
      ? issue.path.join('.')
      : (issue.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys?.join(',') : '') || where,
    message: issue.message,
  }));
  // A body with thousands of bad entries gets a bounded answer, not one line per entry.
  const shown = fields.slice(0, MAX_FIELDS);
  const more = fields.length - shown.length;
  const message = `invalid ${where}: ${shown
    .slice(0, 20)
    .map((f) => `${f.path}: ${f.message}`)
    .join('; ')}${fields.length > 20 ? `; and ${fields.length - 20} more` : ''}`;
  throw new AppError('invalid', 'VALIDATION_FAILED', message, { fields: shown, ...(more ? { more_fields: more } : {}) });
}

/** VALIDATION_FAILED for fields a schema passed but a server rule refuses: `invalid body: path: message; …`. */
export function invalidFields(fields: { path: string; message: string }[], where: 'body' | 'query' | 'header' = 'body'): AppError {
  return new AppError('invalid', 'VALIDATION_FAILED', `invalid ${where}: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, {
    fields,
  });
}
