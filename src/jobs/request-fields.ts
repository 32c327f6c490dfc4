import { z } from 'zod';
import { assertPlatform, parseImageReference } from '../oci/references.js';

/**
 * Field schemas several actions' requests share (the rows of jobs/actions.ts use them).
 * Their descriptions become the OpenAPI docs (src/openapi/openapi-schemas.ts).
 */

/** A refinement that runs one of our assert/parse functions and keeps its message. */
export const checkedBy = (check: (v: string) => unknown, max: number) =>
  z
    .string()
    .max(max)
    .superRefine((value, ctx) => {
      try {
        check(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    });

export const imageReferenceSchema = checkedBy(parseImageReference, 1024).describe(
  'An OCI image reference: [registry/]repository[:tag][@sha256:digest]. Docker Hub names work as in `docker pull`.',
);
export const platformSchema = checkedBy(assertPlatform, 64).describe('os/arch[/variant], e.g. linux/amd64 or linux/arm64.');
export const registryHostSchema = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be a registry host[:port]');
/** A signing key's name (GET /v1/signing-keys); the default key when absent. */
export const keyNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a signing key name');

export const MAX_TIMEOUT_SECONDS = 24 * 3600;

/** Fields every job request may carry besides its action's own. */
export const commonFields = {
  // A signed webhook (Standard Webhooks) on every terminal state.
  callback_url: z
    .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
    .max(2048)
    .optional()
    .describe('Called with a signed webhook when the job ends.'),
  timeout_seconds: z
    .int('must be a whole number of seconds')
    .min(1)
    .max(MAX_TIMEOUT_SECONDS)
    .optional()
    .describe('Time limit once running; default per action (inspect 60, build 3600).'),
  concurrency_key: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/, 'must be 1-128 letters, digits and ._:/@- (not starting with a symbol)')
    .optional()
    .describe('A newer job of the same tenant with the same key cancels this one (state cancelled, error SUPERSEDED).'),
};

const count = z.int('must be a whole number').min(0).max(1_000_000);
export const scanPolicySchema = z
  .object({
    max_critical: count.optional(),
    max_high: count.optional(),
    max_medium: count.optional(),
    max_low: count.optional(),
    max_unknown: count.optional(),
    ignore_unfixed: z.boolean().optional(),
    allow: z
      .array(
        z
          .object({
            id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be a vulnerability id like CVE-2024-1234'),
            reason: z.string().min(1, 'say why it is allowed').max(1024),
            expires: z.iso
              .date({ error: 'must be a date, YYYY-MM-DD' })
              .or(z.iso.datetime({ error: 'must be a date or date-time' }))
              .optional(),
          })
          .strict(),
      )
      .max(500)
      .optional(),
  })
  .strict()
  .describe('Gate over the findings; default: max_critical 0, max_high 4 (the seed: no critical, fewer than 5 high).');

/** A named policy's name (PUT /v1/policies/{name}); also the whole of a request's `policy` when it names one. */
export const POLICY_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const POLICY_NAME_RULE = 'must be 1-63 lower-case letters, digits and - (starting with a letter or digit)';

/** The name of one of the tenant's policies: admission resolves it (admission/named-policy.ts). */
export const policyNameSchema = z
  .string()
  .regex(POLICY_NAME_PATTERN, `a policy name ${POLICY_NAME_RULE}`)
  .describe('The name of one of your policies (GET /v1/policies).');

/** A scan's gate: inline, or the name of one of the tenant's policies (admission resolves it). */
export const requestPolicySchema = z.union([policyNameSchema, scanPolicySchema]);

/**
 * Sign and push: a named policy only (an inline one would have no scan to judge). The
 * catalogue's latest scan of the image's digest must pass it before anything is signed
 * or copied; `max_scan_age` is how fresh that scan must be.
 */
export const gatePolicySchema = z
  .string({ error: `must be the name of one of your policies (${POLICY_NAME_RULE})` })
  .regex(POLICY_NAME_PATTERN, `a policy name ${POLICY_NAME_RULE}`)
  .describe(
    "The name of one of your policies (GET /v1/policies): the catalogue's latest scan of the image's digest must pass it " +
      '(GET /v1/images/{digest}/verdict), or the job fails with POLICY_FAILED and nothing is signed or copied.',
  );

/** A build's `scan` stage: a scan request's options, on the image the build pushed. */
export const scanOptionsSchema = z
  .object({
    scanners: z
      .array(z.enum(['vuln', 'secret'], { error: 'must be vuln or secret' }))
      .min(1)
      .max(2)
      .optional(),
    severity: z
      .array(z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN']))
      .min(1)
      .max(5)
      .optional(),
    ignore_unfixed: z.boolean().optional(),
    policy: requestPolicySchema.optional(),
  })
  .strict();
