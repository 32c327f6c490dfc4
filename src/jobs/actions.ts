import { z } from 'zod';
import { parseSize } from '../analysis/optimize/target-size.js';
import { assertPlatform, formatImageReference, parseImageReference } from '../oci/references.js';
import { buildJobSchema, relativePath } from './build-request.schema.js';
import {
  checkedBy,
  commonFields,
  gatePolicySchema,
  imageReferenceSchema,
  keyNameSchema,
  platformSchema,
  registryHostSchema,
  requestPolicySchema,
} from './request-fields.js';

/**
 * Every action, one row each: its request schema (what the API accepts, the OpenAPI docs
 * and the request's type), the images it touches and its settings. An action is its row
 * here, its processor (workers/processors.ts names one for every row, or it does not
 * compile), its proto message and its CLI command.
 */
interface ActionRow<A extends string> extends RowSettings {
  schema: z.ZodType<{ action: A }>;
  /**
   * Every image reference the request names, and whether the job reads or writes its
   * repository. Admission checks each against the key's repositories and the registry
   * guard (admission/repository-policy.ts, registry-policy.ts) before anything is
   * queued; a row cannot leave it out, so a new action cannot skip those checks.
   */
  images: (request: never) => ImageUse[];
}

/** An image a request names: `path` is its field (e.g. `tags.0`). */
export interface ImageUse {
  path: string;
  reference: string;
  access: 'read' | 'write';
}

interface RowSettings {
  /** Time limit once running, in seconds; a request's timeout_seconds overrides it. */
  timeoutSeconds: number;
  /** BullMQ attempts: registry and network hiccups are worth a retry, a build is not re-run blindly. */
  attempts: number;
  /** Jobs one worker process runs at once (STEVEDORE_CONCURRENCY overrides it). */
  concurrency: number;
}

/** A row, with `images` typed over the row's own request. */
const row = <S extends z.ZodType<{ action: string }>>(schema: S, settings: RowSettings, images: (request: z.output<S>) => ImageUse[]) => ({
  schema,
  ...settings,
  images,
});
const read = (path: string, reference: string): ImageUse => ({ path, reference, access: 'read' });
const write = (path: string, reference: string): ImageUse => ({ path, reference, access: 'write' });
const readsImage = (request: { image: string }) => [read('image', request.image)];
/**
 * The seed's `registry` on inspect, scan, sign and verify: the registry of an `image`
 * given without one. Admission (admission/parse-request.ts) joins the two before any
 * check runs, so the rows' `images`, the guards and the workers see the full reference.
 */
const seedRegistry = registryHostSchema
  .optional()
  .describe('The seed form: the registry (host[:port]) of an `image` given without one, e.g. image team/app:1, registry 127.0.0.1:5000.');

/** Checks that each row's schema is for the action it is filed under. */
const actionTable = <T extends { [A in keyof T & string]: ActionRow<A> }>(table: T): T => table;

const inspectJobSchema = z
  .object({
    action: z.literal('inspect'),
    image: imageReferenceSchema,
    registry: seedRegistry,
    platform: platformSchema.optional(),
    platform_check: z
      .boolean()
      .optional()
      .describe('false skips the platform check: no layer is streamed (a quick look at a large image). Default true.'),
    ...commonFields,
  })
  .strict();

/**
 * A scan's platform: one, or `all` (every platform of an index; the default for one).
 * `all/…` is refused, though it has the os/arch shape: it reads as a mistyped `all`.
 */
const scanPlatformSchema = checkedBy((value) => {
  if (value === 'all') return;
  assertPlatform(value);
  if (value.split('/')[0] === 'all') throw new Error(`invalid platform: ${JSON.stringify(value)} ("all" stands alone: every platform)`);
}, 64).describe(
  'all (each platform of a multi-platform image; the default for one, else its only platform) or os/arch[/variant], e.g. linux/arm64.',
);

const scanJobSchema = z
  .object({
    action: z.literal('scan'),
    image: imageReferenceSchema,
    registry: seedRegistry,
    platform: scanPlatformSchema.optional(),
    scanners: z
      .array(z.enum(['vuln', 'secret'], { error: 'must be vuln or secret' }))
      .min(1)
      .max(2)
      .optional(),
    severity: z
      .array(z.enum(['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'], { error: 'must be CRITICAL, HIGH, MEDIUM, LOW or UNKNOWN' }))
      .min(1)
      .max(5)
      .optional(),
    ignore_unfixed: z.boolean().optional(),
    policy: requestPolicySchema.optional(),
    ...commonFields,
  })
  .strict();

const signJobSchema = z
  .object({
    action: z.literal('sign'),
    image: imageReferenceSchema,
    registry: seedRegistry,
    key: keyNameSchema.optional(),
    policy: gatePolicySchema.optional(),
    ...commonFields,
  })
  .strict();
const verifyJobSchema = z
  .object({
    action: z.literal('verify'),
    image: imageReferenceSchema,
    registry: seedRegistry,
    key: keyNameSchema.optional(),
    ...commonFields,
  })
  .strict();

const pushJobSchema = z
  .object({
    action: z.literal('push'),
    image: imageReferenceSchema,
    // Full references to copy to; or the seed's `registry` (same repository and tag there).
    destinations: z.array(imageReferenceSchema).min(1).max(16).optional(),
    registry: registryHostSchema.optional(),
    policy: gatePolicySchema.optional(),
    ...commonFields,
  })
  .strict()
  .superRefine((req, ctx) => {
    if (!!req.destinations === !!req.registry)
      ctx.addIssue({ code: 'custom', path: ['destinations'], message: 'give destinations, or the seed form registry (not both)' });
  });

const optimizeJobSchema = z
  .object({
    action: z.literal('optimize'),
    dockerfile_inline: z
      .string()
      .min(1)
      .max(1024 * 1024)
      .optional(),
    // An uploaded context holding the Dockerfile (at dockerfile_path, default Dockerfile).
    context: z
      .object({ upload: z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>') })
      .strict()
      .optional(),
    dockerfile_path: relativePath.optional(),
    // An image to analyse layer by layer (platform chosen from an index).
    image: imageReferenceSchema.optional(),
    platform: platformSchema.optional(),
    // e.g. 100MB, 1.5GiB, 800kB
    target_size: z
      .string()
      .max(32)
      .superRefine((v, ctx) => {
        try {
          parseSize(v);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
        }
      })
      .optional(),
    // Rule ids to suppress.
    ignore: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a rule id'))
      .max(100)
      .optional(),
    // Build the original and the rewrites, compare sizes and smoke-test them. `commands`: extra
    // argv run in the original and in every rewrite, whose results must match.
    verify: z
      .union([
        z.boolean(),
        z
          .object({
            commands: z
              .array(
                z
                  .array(
                    z
                      .string()
                      .min(1)
                      .max(1024)
                      .regex(/^[^\0]*$/, 'must not hold NUL'),
                  )
                  .min(1)
                  .max(32),
              )
              .max(10)
              .optional(),
          })
          .strict(),
      ])
      .optional(),
    ...commonFields,
  })
  .strict()
  .superRefine((req, ctx) => {
    if (!req.dockerfile_inline && !req.context && !req.image)
      ctx.addIssue({
        code: 'custom',
        path: ['dockerfile_inline'],
        message: 'give dockerfile_inline, a context (+ dockerfile_path) or an image',
      });
    if (req.dockerfile_inline && req.context)
      ctx.addIssue({ code: 'custom', path: ['context'], message: 'give dockerfile_inline or a context, not both' });
    if (req.verify && !req.dockerfile_inline && !req.context)
      ctx.addIssue({ code: 'custom', path: ['verify'], message: 'verify builds the Dockerfile: give one' });
  });

/** The rows' order is the actions' public order (enums, queues, the dashboard). */
export const ACTION_TABLE = actionTable({
  // The build cache (`<first tag repo>:buildcache`), the signature and the scan all live in the tags' repositories.
  build: row(buildJobSchema, { timeoutSeconds: 3600, attempts: 1, concurrency: 2 }, (r) => [
    ...(r.tags ?? []).map((t, i) => write(`tags.${i}`, t)),
    ...(r.registry && r.image ? [write('image', `${r.registry}/${r.image}`)] : []),
    ...(r.push_to ?? []).map((t, i) => write(`push_to.${i}`, t)),
  ]),
  scan: row(scanJobSchema, { timeoutSeconds: 900, attempts: 2, concurrency: 2 }, readsImage),
  push: row(pushJobSchema, { timeoutSeconds: 900, attempts: 3, concurrency: 4 }, (r) => [
    read('image', r.image),
    ...(r.destinations ?? []).map((d, i) => write(`destinations.${i}`, d)),
    ...(r.registry ? [write('registry', formatImageReference({ ...parseImageReference(r.image), registry: r.registry }))] : []),
  ]),
  // cosign stores the signature next to the image (`<repo>:sha256-<digest>.sig`).
  sign: row(signJobSchema, { timeoutSeconds: 300, attempts: 2, concurrency: 4 }, (r) => [write('image', r.image)]),
  verify: row(verifyJobSchema, { timeoutSeconds: 300, attempts: 2, concurrency: 4 }, readsImage),
  inspect: row(inspectJobSchema, { timeoutSeconds: 60, attempts: 3, concurrency: 8 }, readsImage),
  optimize: row(optimizeJobSchema, { timeoutSeconds: 900, attempts: 1, concurrency: 2 }, (r) => (r.image ? [read('image', r.image)] : [])),
});

type ActionTable = typeof ACTION_TABLE;
export type Action = keyof ActionTable;
export const ACTIONS = Object.keys(ACTION_TABLE) as readonly Action[];

/** Requests by action, as validated (the schemas' output). */
export type JobRequests = { [A in Action]: z.output<ActionTable[A]['schema']> };
export type JobRequest = JobRequests[Action];
export type BuildRequest = JobRequests['build'];
export type ScanRequest = JobRequests['scan'];
export type PushRequest = JobRequests['push'];
export type SignRequest = JobRequests['sign'];
export type VerifyRequest = JobRequests['verify'];
export type InspectRequest = JobRequests['inspect'];
export type OptimizeRequest = JobRequests['optimize'];

type RequestSchema = ActionTable[Action]['schema'];
/** The order of the request body's oneOf in openapi.yaml, which predates the table; actions not listed follow in table order. */
const DOCUMENTED_ORDER: readonly Action[] = ['inspect', 'build', 'scan', 'sign', 'verify', 'push', 'optimize'];
const documented = [...DOCUMENTED_ORDER, ...ACTIONS.filter((a) => !DOCUMENTED_ORDER.includes(a))].map(
  (a): RequestSchema => ACTION_TABLE[a].schema,
);

/** Every action's request. */
export const jobRequestSchema = z.discriminatedUnion('action', documented as [RequestSchema, ...RequestSchema[]]);
