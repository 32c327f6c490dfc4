import { z } from 'zod';
import { inspectJobSchema, jobRequestSchema } from '../jobs/job-request.schema.js';
import { ACTIONS, JOB_EVENT_TYPES, JOB_STATES } from '../jobs/job-types.js';

/** OpenAPI 3.0 schema of a zod schema: the request docs come from the validators themselves. */
export function openApiSchema(schema: z.ZodType): Record<string, unknown> {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
  return rest;
}

export const JOB_REQUEST_SCHEMA = openApiSchema(jobRequestSchema);
export const INSPECT_REQUEST_EXAMPLE: z.input<typeof inspectJobSchema> = {
  action: 'inspect',
  image: 'debian:bookworm-slim',
  platform: 'linux/amd64',
};

const errorObject = {
  type: 'object',
  nullable: true,
  required: ['code', 'message', 'details'],
  properties: {
    code: { type: 'string', example: 'IMAGE_NOT_FOUND' },
    message: { type: 'string' },
    details: { type: 'object', additionalProperties: true },
  },
};

/** A build's `diff` (workers/build-diff-stage.ts, analysis/vulnerabilities/build-diff.ts). */
const BUILD_DIFF_SCHEMA = {
  type: 'array',
  maxItems: 4,
  description:
    'A pushed build whose tags were built before by the same tenant (a different digest): one entry per previous digest ' +
    '(tags that pointed at one digest share it), absent when there is none. One platform is compared: the first of this ' +
    "build's platforms the previous build also has, else each build's default platform (`previous_platform` then names " +
    "the previous one). `packages` compares the two CycloneDX SBOMs by (type, name); `findings` this build's scan with the " +
    "previous digest's latest scan (this scan's severity / ignore_unfixed filter applied to the previous findings too). " +
    'Either is null, with `packages_unavailable` / `findings_unavailable` saying why, when a side is missing: no SBOM ' +
    '(sbom off and no scan), no scan in this request, the previous one never scanned, or its artifacts past the job ' +
    'retention. Each list holds at most 500 items (`counts` has the full numbers, `truncated` says a list was cut). ' +
    'Computing it never fails the build: on an error the diff is left out with a `warning` event.',
  items: {
    type: 'object',
    required: ['against', 'platform', 'packages', 'findings'],
    properties: {
      against: {
        type: 'object',
        description: '`{tags, digest, build_job, built_at}`: the previous build of those tags.',
        additionalProperties: true,
      },
      platform: { type: 'string', nullable: true, example: 'linux/amd64' },
      previous_platform: { type: 'string' },
      packages: {
        type: 'object',
        nullable: true,
        description:
          '`added` / `removed` `[{name, version, type}]` (type: the purl type, deb, npm…), ' +
          '`changed` `[{name, type, from, to}]`, `counts`, `truncated`.',
        additionalProperties: true,
      },
      packages_unavailable: { type: 'string' },
      findings: {
        type: 'object',
        nullable: true,
        description:
          '`introduced` / `resolved` `[{id, package, installed_version, severity, fixed_version}]`, `severity_changed` (the same ' +
          'plus `previous_severity`), `counts`, `truncated`, `db_updated_at {previous, current}` (findings also differ when the DB moved).',
        additionalProperties: true,
      },
      findings_unavailable: { type: 'string' },
    },
  },
};

export const JOB_SCHEMA = {
  type: 'object',
  required: [
    'id',
    'action',
    'state',
    'request',
    'result',
    'error',
    'created_at',
    'started_at',
    'finished_at',
    'attempts',
    'timeout_seconds',
  ],
  properties: {
    id: { type: 'string', format: 'uuid' },
    action: { type: 'string', enum: [...ACTIONS] },
    state: { type: 'string', enum: [...JOB_STATES] },
    request: { type: 'object', additionalProperties: true, description: 'The request as submitted (never secrets).' },
    result: {
      type: 'object',
      nullable: true,
      description:
        'Always has image_info, vulnerabilities and optimization_suggestions (empty when they do not apply), plus action-specific keys.',
      required: ['image_info', 'vulnerabilities', 'optimization_suggestions'],
      properties: {
        image_info: { type: 'object', additionalProperties: true },
        vulnerabilities: { type: 'array', items: { type: 'object' } },
        optimization_suggestions: { type: 'array', items: { type: 'object' } },
        diff: BUILD_DIFF_SCHEMA,
        context: {
          type: 'object',
          description:
            'A build from an uploaded context (`context.upload`): what reached the server, after the client applied its ' +
            ".dockerignore — `bytes`, the sum of the regular files' sizes, and `files`, how many regular files.",
          required: ['bytes', 'files'],
          properties: { bytes: { type: 'integer' }, files: { type: 'integer' } },
        },
      },
      additionalProperties: true,
    },
    error: errorObject,
    created_at: { type: 'string', format: 'date-time' },
    started_at: { type: 'string', format: 'date-time', nullable: true },
    finished_at: { type: 'string', format: 'date-time', nullable: true },
    attempts: { type: 'integer' },
    timeout_seconds: { type: 'integer' },
    cancel_requested: { type: 'boolean' },
    origin: {
      type: 'object',
      additionalProperties: true,
      description:
        'Only on jobs the server queued itself. `kind: rescan`: a scan of a catalogued digest after the vulnerability DB changed ' +
        '(`db_updated_at`), compared with `previous` (that scan job) and scanned from the stored SBOMs in `sbom` when there are ' +
        'some; its result carries `diff` {introduced, resolved, severity_changed, fix_changed, counts, truncated} or null.',
    },
  },
};

export const SUBMITTED_SCHEMA = {
  type: 'object',
  required: ['id', 'action', 'state', 'links'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    action: { type: 'string', enum: [...ACTIONS] },
    state: { type: 'string', enum: [...JOB_STATES] },
    links: { type: 'object', properties: { self: { type: 'string' }, events: { type: 'string' }, cancel: { type: 'string' } } },
  },
};

export const JOB_LIST_SCHEMA = {
  type: 'object',
  required: ['items', 'next_cursor'],
  properties: { items: { type: 'array', items: JOB_SCHEMA }, next_cursor: { type: 'string', nullable: true } },
};

export const EVENT_SCHEMA = {
  type: 'object',
  required: ['id', 'type', 'at', 'data'],
  properties: {
    id: {
      type: 'string',
      example: '1795707046761-0',
      description: 'Redis stream id; increases monotonically within a job. Use it as Last-Event-ID.',
    },
    type: { type: 'string', enum: [...JOB_EVENT_TYPES] },
    at: { type: 'number', description: 'Epoch milliseconds when the event was written.' },
    data: { type: 'object', additionalProperties: true },
  },
};

export const ERROR_SCHEMA = {
  type: 'object',
  required: ['error'],
  properties: { error: { ...errorObject, nullable: false }, request_id: { type: 'string' } },
};

/** `repositories` of an API key (docs/tenancy.md, "Repositories per tenant"). */
export const REPOSITORIES_SCHEMA = {
  type: 'array',
  maxItems: 64,
  items: { type: 'string', maxLength: 300, pattern: '^\\S+$' },
  example: ['registry.example:5000/team-a/**', '127.0.0.1:5000/team-a/app'],
  description:
    'Repository patterns the key may push to and read: `*` matches within one path segment, a last segment ' +
    '`**` anything below, a first segment with `*` any registry host; no tags. Stored normalised (Docker ' +
    'Hub names as docker.io/library/…). Docker Hub names and library/ are never writable by tenants. A key ' +
    'made by a tenant admin key gets at most that key’s repositories (its own when omitted).',
};
