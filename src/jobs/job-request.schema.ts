import { z } from 'zod';
import { assertPlatform, parseImageReference } from '../engines/references.js';
import { buildJobFields, pipelineFields, refineBuild, relativePath } from './build-request.schema.js';
import { parseSize } from '../analysis/optimize/target-size.js';
import { ACTIONS, JOB_STATES, MAX_TIMEOUT_SECONDS } from './job-types.js';

/** A refinement that runs one of our assert/parse functions and keeps its message. */
const checkedBy = (check: (v: string) => unknown, max: number) =>
  z.string().max(max).superRefine((value, ctx) => {
    try {
      check(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });

export const imageReferenceSchema = checkedBy(parseImageReference, 1024).describe('An OCI image reference: [registry/]repository[:tag][@sha256:digest]. Docker Hub names work as in `docker pull`.');
export const platformSchema = checkedBy(assertPlatform, 64).describe('os/arch[/variant], e.g. linux/amd64 or linux/arm64.');

const commonFields = {
  callback_url: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).max(2048).optional().describe('Called with a signed webhook when the job ends.'),
  timeout_seconds: z.int('must be a whole number of seconds').min(1).max(MAX_TIMEOUT_SECONDS).optional().describe('Time limit once running; default per action (inspect 60, build 3600).'),
  concurrency_key: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,127}$/, 'must be 1-128 letters, digits and ._:/@- (not starting with a symbol)').optional().describe('A newer job of the same tenant with the same key cancels this one (state cancelled, error SUPERSEDED).'),
};

export const inspectJobSchema = z
  .object({
    action: z.literal('inspect'),
    image: imageReferenceSchema,
    platform: platformSchema.optional(),
    ...commonFields,
  })
  .strict();

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
            expires: z.iso.date({ error: 'must be a date, YYYY-MM-DD' }).or(z.iso.datetime({ error: 'must be a date or date-time' })).optional(),
          })
          .strict(),
      )
      .max(500)
      .optional(),
  })
  .strict()
  .describe('Gate over the findings; default: max_critical 0, max_high 4 (the seed: no critical, fewer than 5 high).');

export const scanJobSchema = z
  .object({
    action: z.literal('scan'),
    image: imageReferenceSchema,
    platform: platformSchema.optional(),
    scanners: z.array(z.enum(['vuln', 'secret'], { error: 'must be vuln or secret' })).min(1).max(2).optional(),
    severity: z.array(z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'], { error: 'must be CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN' })).min(1).max(5).optional(),
    ignore_unfixed: z.boolean().optional(),
    policy: scanPolicySchema.optional(),
    ...commonFields,
  })
  .strict();

export const scanOptionsSchema = z
  .object({
    scanners: z.array(z.enum(['vuln', 'secret'], { error: 'must be vuln or secret' })).min(1).max(2).optional(),
    severity: z.array(z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'])).min(1).max(5).optional(),
    ignore_unfixed: z.boolean().optional(),
    policy: scanPolicySchema.optional(),
  })
  .strict();

const keyName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a signing key name');
export const signJobSchema = z.object({ action: z.literal('sign'), image: imageReferenceSchema, key: keyName.optional(), ...commonFields }).strict();
export const verifyJobSchema = z.object({ action: z.literal('verify'), image: imageReferenceSchema, key: keyName.optional(), ...commonFields }).strict();
export const pushJobSchema = z
  .object({
    action: z.literal('push'),
    image: imageReferenceSchema,
    destinations: z.array(imageReferenceSchema).min(1).max(16).optional(),
    registry: z.string().max(255).regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$/, 'must be a registry host[:port]').optional(),
    ...commonFields,
  })
  .strict()
  .superRefine((req, ctx) => {
    if (!!req.destinations === !!req.registry) ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'give destinations, or the seed form registry (not both)' });
  });

export const buildJobSchema = z
  .object({ ...buildJobFields, ...pipelineFields(scanOptionsSchema, keyName, imageReferenceSchema), ...commonFields })
  .strict()
  .superRefine(refineBuild);

export const optimizeJobSchema = z
  .object({
    action: z.literal('optimize'),
    dockerfile_inline: z.string().min(1).max(1024 * 1024).optional(),
    context: z.object({ upload: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>') }).strict().optional(),
    dockerfile_path: relativePath.optional(),
    image: imageReferenceSchema.optional(),
    platform: platformSchema.optional(),
    target_size: z.string().max(32).superRefine((v, ctx) => {
      try {
        parseSize(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
      }
    }).optional(),
    ignore: z.array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a rule id')).max(100).optional(),
    verify: z.boolean().optional(),
    ...commonFields,
  })
  .strict()
  .superRefine((req, ctx) => {
    if (!req.dockerfile_inline && !req.context && !req.image) ctx.addIssue({ code: 'custom', path: ['dockerfile_inline'], message: 'give dockerfile_inline, a context (+ dockerfile_path) or an image' });
    if (req.dockerfile_inline && req.context) ctx.addIssue({ code: 'custom', path: ['context'], message: 'give dockerfile_inline or a context, not both' });
    if (req.verify && !req.dockerfile_inline && !req.context) ctx.addIssue({ code: 'custom', path: ['verify'], message: 'verify builds the Dockerfile: give one' });
  });

/** Every action's request. */
export const jobRequestSchema = z.discriminatedUnion('action', [inspectJobSchema, buildJobSchema, scanJobSchema, signJobSchema, verifyJobSchema, pushJobSchema, optimizeJobSchema]);

/** The action field alone, checked first so an action not available yet gets its own answer. */
export const actionSchema = z.object({ action: z.enum(ACTIONS, { error: `must be one of ${ACTIONS.join(', ')}` }) });

export const listJobsQuerySchema = z
  .object({
    state: z.enum(JOB_STATES as [string, ...string[]], { error: `must be one of ${JOB_STATES.join(', ')}` }).optional(),
    action: z.enum(ACTIONS, { error: `must be one of ${ACTIONS.join(', ')}` }).optional(),
    limit: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be 1-100').max(100, 'must be 1-100').default(20),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export const eventsQuerySchema = z.object({ follow: z.enum(['true', 'false'], { error: 'must be true or false' }).default('true') }).strict();

export const inspectQuerySchema = z.object({ ref: imageReferenceSchema, platform: platformSchema.optional() }).strict();

/** `Idempotency-Key`: printable, bounded, so it is safe as part of a Redis key. */
export const idempotencyKeySchema = z.string().regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 printable ASCII characters without spaces');
