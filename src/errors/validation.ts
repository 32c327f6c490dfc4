import type { z } from 'zod';
import { AppError } from './app-error.js';

const MAX_FIELDS = 100;

/** Parses with a zod schema; a failure is VALIDATION_FAILED listing every field path and what is wrong. */
export function validate<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query' | 'header'): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const fields = parsed.error.issues.flatMap(unionBranch).map((issue) => ({
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

type Issue = z.core.$ZodIssue;

/**
 * A union (`policy`: a name or an object) fails as one "Invalid input" at its own path.
 * When every branch but one failed only because the value is of another type, the value
 * was meant for that one branch: its own issues (`policy.allow: Too big`) say what is wrong.
 */
function unionBranch(issue: Issue): Issue[] {
  if (issue.code !== 'invalid_union' || !issue.errors?.length) return [issue];
  const typeOnly = (branch: Issue[]) => branch.length === 1 && branch[0]!.code === 'invalid_type' && branch[0].path.length === 0;
  const meant = issue.errors.filter((branch) => !typeOnly(branch));
  if (meant.length !== 1) return [issue];
  return meant[0]!.map((inner) => ({ ...inner, path: [...issue.path, ...inner.path] })).flatMap(unionBranch);
}

/** VALIDATION_FAILED for fields a schema passed but a server rule refuses: `invalid body: path: message; …`. */
export function invalidFields(fields: { path: string; message: string }[], where: 'body' | 'query' | 'header' | 'path' = 'body'): AppError {
  return new AppError('invalid', 'VALIDATION_FAILED', `invalid ${where}: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, {
    fields,
  });
}
