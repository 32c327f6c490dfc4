import { z } from 'zod';
import { invalidFields } from '../errors/validation.js';
import {
  DIGEST_PATTERN,
  isRepositoryGlob,
  type ExceptionScope,
  isVulnerabilityId,
  REPOSITORY_GLOB_RULE,
  VULNERABILITY_ID_RULE,
} from './exception-scope.js';

export const MAX_REASON_LENGTH = 1024;
export const MAX_OWNER_LENGTH = 256;

/** Reasons may hold line breaks and tabs; nothing else below 0x20 (they reach webhooks, logs and VEX documents). */
const CONTROL = /[\x00-\x08\x0b-\x1f\x7f]/;
const LINE_BREAK = /[\r\n\t]/;

const expiresField = z.iso
  .date({ error: 'must be a date (YYYY-MM-DD) or an ISO date-time' })
  .or(z.iso.datetime({ offset: true, error: 'must be a date (YYYY-MM-DD) or an ISO date-time' }));

/** One of the two, each checked on its own so a refusal names its field. */
export const scopeSchema = z
  .object({
    repository: z.string().refine(isRepositoryGlob, REPOSITORY_GLOB_RULE).optional(),
    digest: z.string().regex(DIGEST_PATTERN, 'must be sha256:<64 hex digits>').optional(),
  })
  .strict()
  .refine((s) => (s.repository === undefined) !== (s.digest === undefined), {
    message: 'must be {repository: "team/app" or a glob such as "team/*"} or {digest: "sha256:…"}, not both',
  })
  .transform((s): ExceptionScope => (s.digest !== undefined ? { digest: s.digest } : { repository: s.repository! }));

export const createExceptionSchema = z
  .object({
    vulnerability_id: z.string({ error: 'must be a string' }).refine(isVulnerabilityId, VULNERABILITY_ID_RULE),
    scope: scopeSchema,
    reason: z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, 'say why the finding is accepted')
      .max(MAX_REASON_LENGTH, `must be at most ${MAX_REASON_LENGTH} characters`)
      .refine((v) => !CONTROL.test(v), 'must not contain control characters'),
    owner: z
      .string({ error: 'must be a string' })
      .trim()
      .min(1, 'say who answers for it')
      .max(MAX_OWNER_LENGTH, `must be at most ${MAX_OWNER_LENGTH} characters`)
      .refine((v) => !CONTROL.test(v) && !LINE_BREAK.test(v), 'must be one line without control characters'),
    expires: expiresField,
  })
  .strict();

export const vexQuerySchema = z.object({ expires: expiresField }).strict();

/**
 * The expiry as an ISO date-time, or VALIDATION_FAILED: it must lie in the future and at
 * most `maxDays` ahead (an exception without an end is the allow-list this replaces). A
 * bare date means its first instant, UTC.
 */
export function checkExpiry(
  expires: string,
  maxDays: number,
  now = new Date(),
  path = 'expires',
  where: 'body' | 'query' = 'body',
): string {
  const at = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(expires) ? `${expires}T00:00:00Z` : expires);
  if (!(at > now.getTime())) throw invalidFields([{ path, message: 'must be in the future' }], where);
  if (at > now.getTime() + maxDays * 86_400_000)
    throw invalidFields([{ path, message: `must be at most ${maxDays} days ahead (STEVEDORE_EXCEPTION_MAX_DAYS)` }], where);
  return new Date(at).toISOString();
}
