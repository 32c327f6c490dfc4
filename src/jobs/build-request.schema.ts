import { z } from 'zod';
import { assertPlatform, parseImageReference } from '../oci/references.js';
import { isTenantBuildArg, RESERVED_BUILD_ARG_NOTE } from '../engines/buildkit/build-command.js';
import { commonFields, imageReferenceSchema, keyNameSchema, registryHostSchema, scanOptionsSchema } from './request-fields.js';

const digest = z.string().regex(/^sha256:[a-f0-9]{64}$/, 'must be sha256:<64 hex>, the digest POST /v1/contexts returned');
/** A relative path inside a context: no absolute paths, no `..`, nothing option-like. */
export const relativePath = z
  .string()
  .min(1)
  .max(1024)
  .refine(
    (p) => !p.startsWith('/') && !p.startsWith('-') && !p.split(/[\\/]/).includes('..') && !/[\x00-\x1f]/.test(p),
    'must be a relative path inside the context (no leading /, no .., no leading -)',
  );
const gitUrl = z
  .string()
  .max(2048)
  .regex(/^(https?:\/\/[^\s#]+|ssh:\/\/[^\s#]+|git@[A-Za-z0-9.-]+:[^\s#]+)$/, 'must be an http(s):// or ssh:// git URL (or git@host:path)');
const gitRef = z
  .string()
  .max(255)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._/-]*$/, 'must be a branch, tag or commit');
const tag = z
  .string()
  .max(512)
  .superRefine((value, ctx) => {
    try {
      const ref = parseImageReference(value);
      if (ref.digest) ctx.addIssue({ code: 'custom', message: 'a tag must not carry a digest' });
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
const platform = z
  .string()
  .max(64)
  .superRefine((value, ctx) => {
    try {
      assertPlatform(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
    }
  });
const buildArgName = z
  .string()
  .max(128)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'build arg names match [A-Za-z_][A-Za-z0-9_]*')
  .refine(isTenantBuildArg, RESERVED_BUILD_ARG_NOTE);
const labelKey = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/, 'label keys are letters, digits and . _ / -');
/**
 * A map with at most `max` entries (maxProperties in openapi). Every request is stored
 * whole in the job record: an unbounded map was a 7.5 MB Redis record.
 */
const boundedRecord = <K extends z.core.$ZodRecordKey, V extends z.ZodType>(key: K, value: V, max: number) =>
  z
    .record(key, value)
    .refine((o) => Object.keys(o).length <= max, `at most ${max} entries`)
    .meta({ maxProperties: max });
export const BUILD_LIMITS = { buildArgs: 100, buildArgValueBytes: 8 * 1024, labels: 64 } as const;
const noBreaks = (max: number) =>
  z
    .string()
    .max(max)
    .refine((v) => !/[\n\r\x00]/.test(v), 'must not contain line breaks or NUL');

const buildJobFields = {
  action: z.literal('build'),
  // An uploaded context (POST /v1/contexts) or a git repository.
  context: z
    .union([
      z.object({ upload: digest }).strict(),
      z.object({ git: gitUrl, ref: gitRef.optional(), subdir: relativePath.optional() }).strict(),
    ])
    .optional(),
  // The Dockerfile text itself, with or without a context.
  dockerfile_inline: z
    .string()
    .min(1)
    .max(1024 * 1024)
    .optional(),
  // The Dockerfile inside the context (default `Dockerfile`), or under STEVEDORE_CONTEXT_ROOT without one.
  dockerfile_path: relativePath.optional(),
  target: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'must be a stage name')
    .optional(),
  build_args: boundedRecord(
    buildArgName,
    z
      .string()
      .max(BUILD_LIMITS.buildArgValueBytes)
      .refine((v) => !v.includes('\0'), 'must not contain NUL'),
    BUILD_LIMITS.buildArgs,
  ).optional(),
  platforms: z.array(platform).min(1).max(8).optional(),
  // Full references to tag (and push); or the seed's registry + image.
  tags: z.array(tag).min(1).max(16).optional(),
  registry: registryHostSchema.optional(),
  image: z.string().max(255).optional(),
  push: z.boolean().optional(),
  labels: boundedRecord(labelKey, noBreaks(4096), BUILD_LIMITS.labels).optional(),
  cache: z.boolean().optional(),
  no_cache: z.boolean().optional(),
  // Secret names (the tenant's own, else STEVEDORE_BUILD_SECRETS), mounted with RUN --mount=type=secret,id=NAME. Never values.
  secrets: z
    .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a secret name'))
    .max(32)
    .optional(),
  provenance: z.boolean().optional(),
};

/** Pipeline fields of a build (they need a pushed image): scan with an optional gate, sign, copy. */
const pipelineFields = {
  scan: scanOptionsSchema.optional(),
  // Absent: the server policy decides (STEVEDORE_DEFAULT_PIPELINE); false: off, where the policy allows it.
  sign: z
    .union([z.boolean(), z.object({ key: keyNameSchema.optional() }).strict()])
    .optional()
    .describe(
      'Sign the pushed image (true: the default key, {key}: that one). Absent: the server policy (STEVEDORE_DEFAULT_PIPELINE) ' +
        'decides; false: not signed, unless the policy makes signing mandatory (400).',
    ),
  // A CycloneDX SBOM per platform manifest, attached as a signed attestation; absent: the server policy decides.
  sbom: z
    .boolean()
    .optional()
    .describe(
      'A CycloneDX SBOM of each platform manifest, stored as an artifact and attached as a signed attestation. Absent: the ' +
        'server policy (STEVEDORE_DEFAULT_PIPELINE) decides; false: none, unless the policy makes it mandatory (400).',
    ),
  push_to: z.array(imageReferenceSchema).min(1).max(16).optional(),
};

const buildObject = z.object({ ...buildJobFields, ...pipelineFields, ...commonFields }).strict();

/** Cross-field rules of a build request. */
function refineBuild(req: z.output<typeof buildObject>, ctx: z.RefinementCtx): void {
  if (!req.context && !req.dockerfile_inline && !req.dockerfile_path)
    ctx.addIssue({ code: 'custom', path: ['context'], message: 'give a context, dockerfile_inline or dockerfile_path' });
  if (req.dockerfile_inline && req.dockerfile_path)
    ctx.addIssue({ code: 'custom', path: ['dockerfile_path'], message: 'give dockerfile_inline or dockerfile_path, not both' });
  if (req.tags && (req.registry || req.image))
    ctx.addIssue({ code: 'custom', path: ['tags'], message: 'give tags, or registry + image, not both' });
  if (!!req.registry !== !!req.image)
    ctx.addIssue({ code: 'custom', path: [req.registry ? 'image' : 'registry'], message: 'registry and image go together' });
  if (req.registry && req.image) {
    try {
      const ref = parseImageReference(`${req.registry}/${req.image}`);
      if (ref.digest || ref.registry !== req.registry) throw new Error('image must be repository[:tag] within the registry');
    } catch (err) {
      ctx.addIssue({ code: 'custom', path: ['image'], message: (err as Error).message });
    }
  }
  if (req.push && !req.tags && !req.image)
    ctx.addIssue({ code: 'custom', path: ['push'], message: 'push needs tags (or registry + image)' });
  for (const stage of ['scan', 'sign', 'sbom', 'push_to'] as const) {
    if (req[stage] && (req.push === false || (!req.tags && !req.image)))
      ctx.addIssue({ code: 'custom', path: [stage], message: `${stage} acts on the pushed image: give tags (and leave push on)` });
  }
}

/** The build action's request (its row is in jobs/actions.ts): the largest schema, in its own file. */
export const buildJobSchema = buildObject.superRefine(refineBuild);
