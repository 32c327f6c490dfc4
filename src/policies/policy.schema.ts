import { z } from 'zod';
import { POLICY_NAME_PATTERN, POLICY_NAME_RULE, scanPolicySchema } from '../jobs/request-fields.js';
import { InvalidRangeError, parseRange } from './version-range.js';

export { POLICY_NAME_PATTERN, POLICY_NAME_RULE };

const DURATION = /^([1-9]\d{0,5})(m|h|d)$/;
const UNIT_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const MAX_SCAN_AGE_MS = 365 * UNIT_MS.d;

/** `30m`, `24h`, `7d` → milliseconds. */
export function parseDuration(text: string): number {
  const m = DURATION.exec(text);
  if (!m) throw new Error('must be a whole number and a unit: m, h or d (e.g. 24h, 7d)');
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms > MAX_SCAN_AGE_MS) throw new Error('must be at most 365d');
  return ms;
}

/** Package names as ecosystems write them: dpkg, npm (`@scope/name`), PyPI, Go modules, Maven `group:artifact`. */
const packageName = z.string().regex(/^[A-Za-z0-9@][A-Za-z0-9@/._+:~-]{0,213}$/, 'must be a package name as the SBOM lists it');

/**
 * A named policy's rules: today's scan gate (limits and allow-list, as in a request's
 * inline `policy`) plus the rules only named policies have.
 */
export const namedPolicySchema = scanPolicySchema
  .omit({ ignore_unfixed: true })
  .extend({
    only_fixable: z.boolean().optional().describe('Only findings with a fixed version count against the limits.'),
    fix_grace_days: z
      .int('must be a whole number of days')
      .min(0)
      .max(3650)
      .optional()
      .describe(
        'A fixable finding counts only once its fix has been available this long. Trivy gives no date for a fix: it is counted from the ' +
          "advisory's PublishedDate (NVD/GHSA); a finding without one counts at once.",
      ),
    deny_packages: z
      .array(
        z
          .object({
            name: packageName,
            versions: z
              .string()
              .superRefine((v, ctx) => {
                try {
                  parseRange(v);
                } catch (err) {
                  if (!(err instanceof InvalidRangeError)) throw err;
                  ctx.addIssue({ code: 'custom', message: err.message });
                }
              })
              .optional()
              .describe('Exact version, `*`, or a range: `>=1.2 <1.4 || =2.0.0`. Absent: every version.'),
          })
          .strict(),
      )
      .max(500)
      .optional()
      .describe("Packages that must not be in the image (checked against the scan's package list, the SBOM's content)."),
    max_scan_age: z
      .string()
      .max(16)
      .superRefine((v, ctx) => {
        try {
          parseDuration(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional()
      .describe("The image's latest scan must be newer than this (e.g. 24h, 7d) for the policy to pass."),
  })
  .strict()
  .describe('A named policy. Unset severity limits do not apply (unlike an inline policy, no default limits are added).');

export type NamedPolicyRules = z.infer<typeof namedPolicySchema>;

/** A stored policy, and what a job records of the policy that judged it. */
export interface PolicySnapshot {
  name: string;
  /** 1 on creation, one more on each PUT. */
  version: number;
  updated_at: string;
  rules: NamedPolicyRules;
}
