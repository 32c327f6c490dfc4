import { z } from 'zod';
import { SUPPORTED_BASE_PLATFORMS } from '../runtime/base-platforms.js';
import { MAX_PATTERNS, normalizePattern } from '../auth/repository-patterns.js';
import { parseImageReference } from '../oci/references.js';

/** A comma-separated list, entries trimmed (and lower-cased for host names), empty ones dropped. */
const commaList = (lowerCase = false) =>
  z.string().transform((v) =>
    v
      .split(',')
      .map((entry) => (lowerCase ? entry.trim().toLowerCase() : entry.trim()))
      .filter(Boolean),
  );

const port = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be 1-65535')
  .max(65535, 'must be 1-65535');
const hostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port, e.g. 127.0.0.1:5000');
const absolutePath = z.string().refine((v) => v.startsWith('/'), 'must be an absolute path');
const optional = <T extends z.ZodType>(schema: T) => z.union([z.literal(''), schema]).transform((v) => (v === '' ? undefined : v));

const count = (unit: string, min: number, max: number) =>
  z.coerce
    .number({ error: `must be a number of ${unit}` })
    .int('must be a whole number')
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

/** Patterns as docs/tenancy.md describes them; placeholders are filled in per request. */
const repositoryPatterns = commaList().superRefine((patterns, ctx) => {
  if (patterns.length > MAX_PATTERNS) ctx.addIssue({ code: 'custom', message: `must list at most ${MAX_PATTERNS} patterns` });
  for (const p of patterns) {
    try {
      normalizePattern(p.replaceAll('{tenant}', 'tenant').replaceAll('{mirror}', 'mirror.example:5000'));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `${p}: ${(err as Error).message}` });
    }
  }
});

/** The variables' values, checked and converted; loadConfig() turns them into an AppConfig. */
export const configSchema = z.object({
  STEVEDORE_HTTP_HOST: z.string().min(1, 'must not be empty'),
  STEVEDORE_HTTP_PORT: port,
  STEVEDORE_GRPC_PORT: port,
  STEVEDORE_TOKEN: optional(
    z
      .string()
      .min(16, 'must be at least 16 characters')
      .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  ),
  STEVEDORE_STATE_DIR: absolutePath,
  STEVEDORE_CACHE_DIR: absolutePath,
  REDIS_URL: optional(z.string().regex(/^rediss?:\/\/\S+$/, 'must be a redis:// or rediss:// URL')),
  STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: z.enum(['true', 'false'], { error: 'must be true or false' }),
  STEVEDORE_BUILDKIT_TLS_DIR: optional(absolutePath),
  BUILDKIT_HOST: optional(
    z
      .string()
      .regex(
        /^(unix:\/\/\/\S+|tcp:\/\/\S+:\d+|docker-container:\/\/\S+)$/,
        'must be unix:///path, tcp://host:port or docker-container://name',
      ),
  ),
  STEVEDORE_REGISTRY_MIRROR: optional(hostPort),
  STEVEDORE_REGISTRY_LISTEN: hostPort,
  STEVEDORE_JOB_RETENTION_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .int('must be a whole number')
    .min(60, 'must be at least 60')
    .max(366 * 86400, 'must be at most a year'),
  STEVEDORE_CATALOGUE_RETENTION_DAYS: z.coerce
    .number({ error: 'must be a number of days' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(3650, 'must be at most 3650'),
  STEVEDORE_RESCAN_INTERVAL_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .int('must be a whole number')
    .min(0, 'must be 0 (off) or more')
    .max(86400, 'must be at most a day'),
  STEVEDORE_RESCAN_CONCURRENCY: z.coerce
    .number({ error: 'must be a number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(16, 'must be at most 16'),
  STEVEDORE_RECONCILE_INTERVAL_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(0, 'must be 0 (off) or more')
    .max(3600, 'must be at most 3600')
    .refine((v) => v === 0 || v >= 0.1, 'must be 0 (off) or at least 0.1'),
  STEVEDORE_RECONCILE_AFTER_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(1, 'must be at least 1')
    .max(86400, 'must be at most a day'),
  STEVEDORE_CONCURRENCY: z.string().regex(/^$|^[a-z]+=\d{1,3}(,[a-z]+=\d{1,3})*$/, 'must look like inspect=16,build=2'),
  STEVEDORE_REGISTRY_AUTH_FILE: optional(absolutePath),
  STEVEDORE_INSECURE_REGISTRIES: commaList().pipe(z.array(hostPort)),
  STEVEDORE_REGISTRY_ALLOWED_HOSTS: commaList(true).pipe(
    z.array(z.string().regex(/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'must be host or host:port entries')),
  ),
  STEVEDORE_BODY_LIMIT_BYTES: z.coerce
    .number({ error: 'must be a number of bytes' })
    .int('must be a whole number')
    .min(1024, 'must be at least 1024')
    .max(1024 ** 3, 'must be at most 1 GiB'),
  STEVEDORE_CONTEXT_ROOT: optional(absolutePath),
  STEVEDORE_CONTEXT_MAX_BYTES: z.coerce
    .number({ error: 'must be a number of bytes' })
    .int('must be a whole number')
    .min(1024, 'must be at least 1024'),
  STEVEDORE_CONTEXT_TTL_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .int('must be a whole number')
    .min(60, 'must be at least 60'),
  STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES: count('bytes', 1024, Number.MAX_SAFE_INTEGER),
  STEVEDORE_CONTEXT_MAX_ENTRIES: count('entries', 1, 10_000_000),
  STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS: count('seconds', 1, 86_400),
  STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES: count('bytes', 0, Number.MAX_SAFE_INTEGER),
  STEVEDORE_BUILD_PLATFORMS: commaList().pipe(
    z
      .array(z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'must be os/arch[/variant] entries'))
      .min(1, 'must list at least one platform'),
  ),
  STEVEDORE_BASE_PLATFORMS: commaList()
    .transform((list) => [...new Set(list)])
    .pipe(
      z
        .array(z.enum(SUPPORTED_BASE_PLATFORMS as [string, ...string[]], { error: `must be among ${SUPPORTED_BASE_PLATFORMS.join(', ')}` }))
        .refine((list) => list.includes('linux/amd64'), 'must include linux/amd64 (the Docker engine imports it)'),
    ),
  STEVEDORE_BUILD_ALLOWED_HOSTS: commaList(true).pipe(
    z.array(z.string().regex(/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'must be host or host:port entries')),
  ),
  STEVEDORE_BUILD_SECRETS: z
    .string()
    .regex(
      /^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}=(env:[A-Za-z_][A-Za-z0-9_]*|file:\/[^,]+)(,[A-Za-z0-9][A-Za-z0-9._-]{0,63}=(env:[A-Za-z_][A-Za-z0-9_]*|file:\/[^,]+))*$/,
      'must look like name=env:VAR,name2=file:/abs/path',
    ),
  STEVEDORE_TRIVY_CACHE_DIR: optional(absolutePath),
  STEVEDORE_TRIVY_DB_UPDATE: z.enum(['auto', 'true', 'false'], { error: 'must be auto, true or false' }),
  STEVEDORE_TRIVY_DB_REPOSITORY: commaList().superRefine((repositories, ctx) => {
    if (repositories.length === 0) ctx.addIssue({ code: 'custom', message: 'must name at least one repository' });
    for (const r of repositories) {
      // Handed to trivy as --db-repository: a reference Docker would read, with a registry host.
      const parsed = (() => {
        try {
          return parseImageReference(r);
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: `${r}: ${(err as Error).message}` });
        }
      })();
      if (parsed?.digest) ctx.addIssue({ code: 'custom', message: `${r}: name a repository and tag, not a digest` });
    }
  }),
  STEVEDORE_TRIVY_DB_MAX_BYTES: count('bytes', 1024, 64 * 1024 ** 3),
  TRIVY_SERVER_URL: optional(z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL')),
  TRIVY_TOKEN: optional(z.string().min(1)),
  STEVEDORE_SIGNING_KEYS_FILE: optional(absolutePath),
  STEVEDORE_SIGNING_OFFLINE: z.enum(['true', 'false'], { error: 'must be true or false' }),
  STEVEDORE_DEFAULT_PIPELINE: z
    .string()
    .regex(
      /^(none|(sbom|sign)!?(,(sbom|sign)!?)?)$/,
      'must be none, or sbom and/or sign, each optionally with ! (mandatory): e.g. sbom,sign!',
    )
    .refine((v) => new Set(v.split(',').map((s) => s.replace('!', ''))).size === v.split(',').length, 'names each stage once'),
  STEVEDORE_SMOKE_RUNTIME: z.enum(['buildkit', 'docker', 'none'], { error: 'must be buildkit, docker or none' }),
  STEVEDORE_SMOKE_TIMEOUT_SECONDS: count('seconds', 1, 600),
  STEVEDORE_SECRETS_KEY: optional(
    z.string().refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded (openssl rand -base64 32)'),
  ),
  STEVEDORE_API_KEY_RATE_LIMIT: count('requests per minute', 0, 1_000_000),
  STEVEDORE_TENANT_MAX_CONCURRENT_JOBS: count('jobs', 0, 10_000),
  STEVEDORE_TENANT_MAX_RATE_LIMIT: count('requests per minute', 0, 1_000_000),
  STEVEDORE_TENANT_MAX_CONCURRENT_JOBS_CEILING: count('jobs', 0, 10_000),
  STEVEDORE_STREAMS_PER_KEY: count('streams', 0, 100_000),
  STEVEDORE_STREAMS_PER_TENANT: count('streams', 0, 1_000_000),
  STEVEDORE_DEFAULT_TENANT_REPOSITORIES: repositoryPatterns,
  STEVEDORE_SHARED_READ_REPOSITORIES: repositoryPatterns,
  STEVEDORE_WEBHOOK_ALLOWED_HOSTS: commaList(true).pipe(
    z.array(z.string().regex(/^[a-z0-9.-]+$|^\[?[0-9a-f:]+\]?$/, 'must be host names or IP addresses')),
  ),
  STEVEDORE_WEBHOOK_ATTEMPTS: count('attempts', 1, 50),
  STEVEDORE_WEBHOOK_RETRY_BASE_MS: count('milliseconds', 10, 86_400_000),
  STEVEDORE_WEBHOOK_TIMEOUT_MS: count('milliseconds', 100, 300_000),
  STEVEDORE_EXCEPTION_MAX_DAYS: count('days', 1, 3650),
  STEVEDORE_EXCEPTION_MAX_PER_TENANT: count('exceptions', 1, 100_000),
  STEVEDORE_EXCEPTION_SWEEP_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(0.05, 'must be at least 0.05')
    .max(3600, 'must be at most 3600'),
  STEVEDORE_JOB_LOCK_SECONDS: count('seconds', 1, 3600),
  STEVEDORE_SHUTDOWN_GRACE_SECONDS: count('seconds', 0, 86_400),
  STEVEDORE_METRICS_PORT: count('port number', 0, 65535),
  STEVEDORE_EVENT_LOOP_DEGRADED_MS: count('milliseconds', 1, 60_000),
  STEVEDORE_EVENT_LOOP_DEGRADED_WINDOW_SECONDS: count('seconds', 1, 600),
  STEVEDORE_SSE_HEARTBEAT_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(0.05, 'must be at least 0.05')
    .max(300, 'must be at most 300'),
  STEVEDORE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'must be one of fatal, error, warn, info, debug, trace, silent',
  }),
});
