import { z } from 'zod';
import { matchesPattern, normalizePattern } from '../auth/repository-patterns.js';
import { assertDigest, InvalidReferenceError } from '../oci/references.js';
import { POLICY_NAME_PATTERN, POLICY_NAME_RULE } from '../policies/policy.schema.js';
import { hasSeverityAtLeast, SEVERITY_LEVELS, type ImageRecord } from './catalogue-record.js';

export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 200;

const bool = (name: string) => z.enum(['true', 'false'], { error: `${name} must be true or false` }).transform((v) => v === 'true');

/**
 * A repository filter: exact (`host/team/app`) or a glob in the syntax of API keys'
 * repository patterns (`*` one path segment, `**` anything below, docs/tenancy.md).
 * Without a registry host it matches that path on every registry: `team/*` is `*\/team/*`.
 */
const repositoryFilter = z
  .string()
  .max(300)
  .transform((value, ctx) => {
    const first = value.split('/')[0] ?? '';
    const hasHost = value.includes('/') && (/[.:*[]/.test(first) || first === 'localhost');
    const pattern = hasHost ? value : `*/${value}`;
    try {
      normalizePattern(pattern);
      return pattern;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: err instanceof InvalidReferenceError ? err.message : 'invalid repository pattern' });
      return z.NEVER;
    }
  });

/** GET /v1/images: every value checked, unknown parameters refused. */
export const listImagesQuerySchema = z
  .object({
    repository: repositoryFilter.optional(),
    tag: z
      .string()
      .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, 'must be a tag: letters, digits and . _ - (at most 128)')
      .optional(),
    severity: z.enum(SEVERITY_LEVELS, { error: `must be one of ${SEVERITY_LEVELS.join(', ')}` }).optional(),
    signed: bool('signed').optional(),
    has_sbom: bool('has_sbom').optional(),
    limit: z.coerce
      .number({ error: 'must be a number' })
      .int('must be a whole number')
      .min(1, `must be 1-${MAX_LIMIT}`)
      .max(MAX_LIMIT, `must be 1-${MAX_LIMIT}`)
      .default(DEFAULT_LIMIT),
    cursor: z
      .string()
      .max(300)
      .regex(/^[A-Za-z0-9_-]+$/, 'not a cursor this server issued')
      .optional(),
  })
  .strict();

export type ListImagesQuery = z.output<typeof listImagesQuerySchema>;

export const digestSchema = z.string().superRefine((value, ctx) => {
  try {
    assertDigest(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});

/** GET /v1/images/{digest}/verdict: the one parameter, the name of one of the tenant's policies. */
export const verdictQuerySchema = z
  .object({
    policy: z
      .string({ error: 'give the name of one of your policies: ?policy=<name> (GET /v1/policies)' })
      .regex(POLICY_NAME_PATTERN, `a policy name ${POLICY_NAME_RULE}`),
  })
  .strict();

/** The record filter of a query (all given filters must hold). */
export function recordMatcher(query: Omit<ListImagesQuery, 'limit' | 'cursor'>): (record: ImageRecord) => boolean {
  return (record) => {
    if (query.repository) {
      const pattern = query.repository;
      const repositories = record.repositories.length ? record.repositories : [record.repository];
      if (!repositories.some((r) => safeMatch(pattern, r))) return false;
    }
    if (query.tag && !record.references.some((r) => r.tag === query.tag)) return false;
    if (query.severity && !(record.latest_scan && hasSeverityAtLeast(record.latest_scan.summary, query.severity))) return false;
    if (query.signed !== undefined && record.signatures.length > 0 !== query.signed) return false;
    if (query.has_sbom !== undefined && !!record.sbom !== query.has_sbom) return false;
    return true;
  };
}

function safeMatch(pattern: string, repository: string): boolean {
  try {
    return matchesPattern(pattern, repository);
  } catch {
    return false;
  }
}
