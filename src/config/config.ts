import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { z } from 'zod';
import { MAX_PATTERNS, normalizePattern } from '../auth/repository-patterns.js';

/**
 * Every environment variable the service reads, with its default and meaning. The
 * README's configuration table is this list; `describeConfig()` prints it.
 */
export const CONFIG_VARIABLES = {
  STEVEDORE_HTTP_HOST: { default: '0.0.0.0', doc: 'Address the REST API listens on.' },
  STEVEDORE_HTTP_PORT: { default: '8080', doc: 'Port of the REST API (`/docs`, `/openapi.json`, `/healthz`, `/readyz`).' },
  STEVEDORE_GRPC_PORT: { default: '50051', doc: 'Port of the gRPC server (health, reflection, `stevedore.v1`).' },
  STEVEDORE_TOKEN: {
    default: '',
    doc:
      'Admin bearer token (at least 16 characters). `serve` generates one into ' +
      '`<state dir>/admin-token` when unset; `api` and `worker` require it.',
  },
  STEVEDORE_STATE_DIR: {
    default: '/var/lib/stevedore',
    doc:
      'Where `serve` keeps embedded Redis data (AOF), the embedded registry, BuildKit state, `serve.json`, `admin-token` and the ' +
      'generated credentials of the embedded Redis and registry (`redis-password`, `registry-password`, `docker/config.json`).',
  },
  STEVEDORE_CACHE_DIR: {
    default: '/var/cache/stevedore',
    doc: 'Toolchain cache made by `npm run setup`: pinned Node, buildkitd/buildctl/trivy/cosign, the seeded base image.',
  },
  REDIS_URL: {
    default: '',
    doc:
      'Redis for queues and job records, with its password: `redis://:PASSWORD@redis:6379/0` (`rediss://` for TLS). ' +
      'A URL without a password is refused at start (see `STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS`). Unset: `serve` ' +
      'starts an embedded Redis with a generated password (`<state dir>/redis-password`); `api`/`worker` require it.',
  },
  STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: {
    default: 'false',
    doc:
      '**Unsafe.** `true` lets `api`, `worker` and `serve` use a `REDIS_URL` without a password: anyone who reaches ' +
      'that Redis can read every job record and queue jobs the workers run. Only for a Redis no one else can reach.',
  },
  BUILDKIT_HOST: {
    default: '',
    doc:
      'buildkitd address, e.g. `unix:///run/buildkit/buildkitd.sock` or ' +
      '`tcp://host:1234`. Unset: `serve` starts an embedded buildkitd (root needed).',
  },
  STEVEDORE_BUILDKIT_TLS_DIR: {
    default: '',
    doc:
      'Directory with the client certificate for a `tcp://` `BUILDKIT_HOST` that requires ' +
      'mutual TLS: `ca.pem`, `cert.pem`, `key.pem` (or `ca.crt`, `tls.crt`, `tls.key`), ' +
      'handed to buildctl as `--tlsdir`. `scripts/gen-buildkit-certs.sh` makes them.',
  },
  STEVEDORE_REGISTRY_MIRROR: {
    default: '',
    doc:
      'host:port of the registry BuildKit uses as its docker.io mirror (holds `library/debian:bookworm-slim`). ' +
      'Unset: `serve` starts an embedded registry on `STEVEDORE_REGISTRY_LISTEN` and seeds it.',
  },
  STEVEDORE_REGISTRY_LISTEN: {
    default: '127.0.0.1:5000',
    doc:
      'Listen address of the embedded registry. It requires the user `stevedore` with ' +
      'the password in `<state dir>/registry-password` for every request, reads included ' +
      '(htpasswd, HTTP basic auth: keep it on loopback or put TLS in front of it).',
  },
  STEVEDORE_LOG_LEVEL: { default: 'info', doc: 'pino level: fatal, error, warn, info, debug, trace, silent.' },
  STEVEDORE_JOB_RETENTION_SECONDS: {
    default: '604800',
    doc: 'How long finished job records and their event logs are kept (default 7 days).',
  },
  STEVEDORE_CONCURRENCY: {
    default: '',
    doc:
      'Worker concurrency per queue, e.g. `inspect=16,build=2`. Defaults: ' +
      'build 2, scan 2, push 4, sign 4, verify 4, inspect 8, optimize 2.',
  },
  STEVEDORE_REGISTRY_AUTH_FILE: {
    default: '',
    doc:
      'Docker `config.json` with registry credentials (`auths`), read by the server; jobs ' +
      'never carry credentials. `serve` with its embedded registry uses ' +
      "`<state dir>/docker/config.json`: this file (when set) plus the embedded registry's credentials.",
  },
  STEVEDORE_INSECURE_REGISTRIES: {
    default: '',
    doc: 'Comma-separated host:port list reached over plain HTTP (loopback registries always are).',
  },
  STEVEDORE_REGISTRY_ALLOWED_HOSTS: {
    default: '',
    doc:
      'Comma-separated `host[:port]` registries a job may name although they are loopback, private, link-local or ' +
      'metadata addresses (after DNS resolution), e.g. an internal registry; a host without a port allows all its ' +
      'ports. The mirror (or the embedded registry) and `STEVEDORE_INSECURE_REGISTRIES` are always allowed. Others ' +
      'are refused at submission (400 REGISTRY_FORBIDDEN) and at connect time, redirects and token realms included.',
  },
  STEVEDORE_BODY_LIMIT_BYTES: { default: '10485760', doc: 'Largest JSON request body accepted (413 above it).' },
  STEVEDORE_CONTEXT_ROOT: {
    default: '',
    doc:
      'Server directory under which a build without a context finds `dockerfile_path` ' +
      '(its directory is the context). Unset: such builds are refused.',
  },
  STEVEDORE_CONTEXT_MAX_BYTES: { default: '536870912', doc: 'Largest uploaded build context (POST /v1/contexts), default 512 MiB.' },
  STEVEDORE_CONTEXT_TTL_SECONDS: { default: '86400', doc: 'Uploaded contexts unused this long are deleted.' },
  STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES: {
    default: '2147483648',
    doc:
      'Largest uploaded context once unpacked (sum of file sizes, and the decompressed tar stream), ' +
      'default 2 GiB: a small gzip can expand a thousandfold. 413 `CONTEXT_TOO_LARGE` above it.',
  },
  STEVEDORE_CONTEXT_MAX_ENTRIES: {
    default: '65536',
    doc: 'Most entries (files, directories, links) in one uploaded context (413 `CONTEXT_TOO_LARGE` above it).',
  },
  STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS: {
    default: '300',
    doc:
      'Time limit of one context upload: receiving it (408 `UPLOAD_TIMEOUT` when the ' +
      'body is still arriving), then checking and unpacking it (413 `CONTEXT_TOO_LARGE`).',
  },
  STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES: {
    default: '10737418240',
    doc:
      "Disk a tenant's uploaded contexts may take, unpacked (default 10 GiB; 0 = no quota). Each tenant is charged the " +
      'full size of every context it holds until its TTL passes; an upload past it gets 429 `CONTEXT_QUOTA_EXCEEDED`.',
  },
  STEVEDORE_BUILD_PLATFORMS: { default: 'linux/amd64,linux/arm64', doc: 'Platforms a build may ask for (foreign ones run through QEMU).' },
  STEVEDORE_BUILD_ALLOWED_HOSTS: {
    default: '',
    doc:
      "Comma-separated `host[:port]` a build's own fetches (`ADD <url>`, git contexts, registry pulls " +
      'and pushes) may reach although they are loopback, private or link-local (e.g. an internal git ' +
      'server or registry). The registry mirror is always allowed. Everything else local or private is ' +
      'refused: at submission (git contexts, 400) and by the build firewall (docs/build-isolation.md).',
  },
  STEVEDORE_BUILD_SECRETS: {
    default: '',
    doc:
      'Build secrets by name: `npm_token=env:NPM_TOKEN,pip_conf=file:/etc/stevedore/pip.conf`. ' +
      'Builds name them in `secrets`; values never enter Redis, events or logs.',
  },
  STEVEDORE_TRIVY_CACHE_DIR: { default: '', doc: "Trivy's cache dir; its DB is `<dir>/db/trivy.db`. Default `<state dir>/trivy`." },
  STEVEDORE_TRIVY_DB_UPDATE: {
    default: 'false',
    doc:
      'Let Trivy download DB updates (`true` needs its DB registry reachable). ' +
      'Off: scans use the DB present and never touch the network for it.',
  },
  TRIVY_SERVER_URL: {
    default: '',
    doc: 'Scan in client/server mode against this Trivy server (`trivy server`); the workers then need no DB.',
  },
  TRIVY_TOKEN: { default: '', doc: "The Trivy server's token (sent as Trivy-Token; never logged or stored)." },
  STEVEDORE_SIGNING_KEYS_FILE: {
    default: '',
    doc:
      'JSON file naming the cosign signing keys: `{"default": "release", "keys": [{"name": ' +
      '"release", "key": "/etc/stevedore/cosign.key" or a KMS URI, "password_env": "VAR" ' +
      'or "password_file": "/path"}]}`. Passwords are read at use, never stored.',
  },
  STEVEDORE_SIGNING_OFFLINE: {
    default: 'true',
    doc: "Sign and verify with no transparency log and no Sigstore services (air-gapped). `false`: cosign's defaults apply.",
  },
  STEVEDORE_SMOKE_RUNTIME: {
    default: '',
    doc: 'Container runtime for optimize verify smoke tests: `docker` (the Docker CLI and engine) or empty (smoke test skipped).',
  },
  STEVEDORE_SECRETS_KEY: {
    default: '',
    doc:
      'AES-256-GCM key (32 bytes, base64) that encrypts tenant secrets and webhook secrets at rest. `serve` generates ' +
      'one into `<state dir>/secrets.key` when unset; `api` and `worker` require it (the same value everywhere).',
  },
  STEVEDORE_API_KEY_RATE_LIMIT: {
    default: '600',
    doc:
      'Requests per minute per API key when the key sets no `rate_limit_per_minute` ' +
      '(429 with Retry-After above it; 0 = unlimited). The admin token is not limited.',
  },
  STEVEDORE_TENANT_MAX_CONCURRENT_JOBS: {
    default: '0',
    doc: "Running jobs per tenant when the submitting key sets no `max_concurrent_jobs` (0 = only the workers' concurrency limits).",
  },
  STEVEDORE_TENANT_MAX_RATE_LIMIT: {
    default: '600',
    doc:
      "Ceiling on `rate_limit_per_minute` of keys a tenant's own `admin` key creates (403 LIMIT_FORBIDDEN above it, or " +
      "above the creating key's own limit); 0 = only the creating key's limit bounds it. The admin token may set any value.",
  },
  STEVEDORE_TENANT_MAX_CONCURRENT_JOBS_CEILING: {
    default: '8',
    doc:
      "Ceiling on `max_concurrent_jobs` of keys a tenant's own `admin` key creates (403 LIMIT_FORBIDDEN above it, or " +
      "above the creating key's or tenant's current cap); 0 = no ceiling of its own. The admin token may set any value.",
  },
  STEVEDORE_STREAMS_PER_KEY: {
    default: '20',
    doc:
      'Live event streams (SSE `/events` following, gRPC `Watch`) one API key may hold open on ' +
      'one API process; 429 TOO_MANY_STREAMS above it. 0 = no cap. The admin token is not capped.',
  },
  STEVEDORE_STREAMS_PER_TENANT: {
    default: '100',
    doc: 'Live event streams all keys of one tenant may hold open on one API process; 429 TOO_MANY_STREAMS above it. 0 = no cap.',
  },
  STEVEDORE_DEFAULT_TENANT_REPOSITORIES: {
    default: '',
    doc:
      'Comma-separated repository patterns an API key without `repositories` may push to (and ' +
      'read), `{tenant}` standing for its tenant, e.g. `registry.example:5000/{tenant}/**`. ' +
      'Empty: such keys write nothing (403 REPOSITORY_FORBIDDEN). Syntax: docs/tenancy.md.',
  },
  STEVEDORE_SHARED_READ_REPOSITORIES: {
    default: 'docker.io/library/**,{mirror}/library/**',
    doc:
      'Comma-separated repository patterns every API key may read (inspect, scan, verify, push source) besides ' +
      'its own; `{mirror}` is the docker.io mirror registry. Tenants never write Docker Hub names or `library/`.',
  },
  STEVEDORE_WEBHOOK_ALLOWED_HOSTS: {
    default: '',
    doc:
      'Comma-separated callback hosts exempt from the SSRF guard (e.g. an in-cluster receiver). ' +
      'Others may not resolve to loopback, private, link-local, multicast or unspecified addresses.',
  },
  STEVEDORE_WEBHOOK_ATTEMPTS: { default: '8', doc: 'Delivery attempts per webhook (at-least-once; the same webhook-id on every attempt).' },
  STEVEDORE_WEBHOOK_RETRY_BASE_MS: {
    default: '340000',
    doc: 'First retry delay of a failed webhook; each later one doubles, with jitter (8 attempts span about 12 h).',
  },
  STEVEDORE_WEBHOOK_TIMEOUT_MS: { default: '10000', doc: 'Time limit of one webhook delivery attempt.' },
  STEVEDORE_JOB_LOCK_SECONDS: {
    default: '30',
    doc:
      "How long a worker's hold on a running job lasts without renewal: a worker " +
      'that dies is detected (and its job recovered) within about twice this.',
  },
  STEVEDORE_SHUTDOWN_GRACE_SECONDS: {
    default: '30',
    doc:
      'On SIGTERM, how long running jobs may take to finish before they are handed back to the queue for ' +
      'another worker. A shutdown that still cannot finish (Redis not answering) exits 15 s later anyway.',
  },
  STEVEDORE_METRICS_PORT: {
    default: '9464',
    doc: "Port of a `worker`'s own /metrics and /healthz (the api and `serve` expose /metrics on the REST port). 0 = none.",
  },
  STEVEDORE_SSE_HEARTBEAT_SECONDS: { default: '15', doc: 'Interval of the comment lines that keep an idle event stream open.' },
} as const;

export type ConfigVariable = keyof typeof CONFIG_VARIABLES;

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
const repositoryPatterns = z
  .string()
  .transform((v) =>
    v
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean),
  )
  .superRefine((patterns, ctx) => {
    if (patterns.length > MAX_PATTERNS) ctx.addIssue({ code: 'custom', message: `must list at most ${MAX_PATTERNS} patterns` });
    for (const p of patterns) {
      try {
        normalizePattern(p.replaceAll('{tenant}', 'tenant').replaceAll('{mirror}', 'mirror.example:5000'));
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: `${p}: ${(err as Error).message}` });
      }
    }
  });

const schema = z.object({
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
  STEVEDORE_CONCURRENCY: z.string().regex(/^$|^[a-z]+=\d{1,3}(,[a-z]+=\d{1,3})*$/, 'must look like inspect=16,build=2'),
  STEVEDORE_REGISTRY_AUTH_FILE: optional(absolutePath),
  STEVEDORE_INSECURE_REGISTRIES: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim())
        .filter(Boolean),
    )
    .pipe(z.array(hostPort)),
  STEVEDORE_REGISTRY_ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'must be host or host:port entries'))),
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
  STEVEDORE_BUILD_PLATFORMS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(z.string().regex(/^[a-z0-9]+\/[a-z0-9_]+(\/[a-z0-9]+)?$/, 'must be os/arch[/variant] entries'))
        .min(1, 'must list at least one platform'),
    ),
  STEVEDORE_BUILD_ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^([a-z0-9.-]+|\[[0-9a-f:.]+\])(:\d{1,5})?$/, 'must be host or host:port entries'))),
  STEVEDORE_BUILD_SECRETS: z
    .string()
    .regex(
      /^$|^[A-Za-z0-9][A-Za-z0-9._-]{0,63}=(env:[A-Za-z_][A-Za-z0-9_]*|file:\/[^,]+)(,[A-Za-z0-9][A-Za-z0-9._-]{0,63}=(env:[A-Za-z_][A-Za-z0-9_]*|file:\/[^,]+))*$/,
      'must look like name=env:VAR,name2=file:/abs/path',
    ),
  STEVEDORE_TRIVY_CACHE_DIR: optional(absolutePath),
  STEVEDORE_TRIVY_DB_UPDATE: z.enum(['true', 'false'], { error: 'must be true or false' }),
  TRIVY_SERVER_URL: optional(z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL')),
  TRIVY_TOKEN: optional(z.string().min(1)),
  STEVEDORE_SIGNING_KEYS_FILE: optional(absolutePath),
  STEVEDORE_SIGNING_OFFLINE: z.enum(['true', 'false'], { error: 'must be true or false' }),
  STEVEDORE_SMOKE_RUNTIME: z.enum(['', 'docker'], { error: 'must be docker or empty' }),
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
  STEVEDORE_WEBHOOK_ALLOWED_HOSTS: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(/^[a-z0-9.-]+$|^\[?[0-9a-f:]+\]?$/, 'must be host names or IP addresses'))),
  STEVEDORE_WEBHOOK_ATTEMPTS: count('attempts', 1, 50),
  STEVEDORE_WEBHOOK_RETRY_BASE_MS: count('milliseconds', 10, 86_400_000),
  STEVEDORE_WEBHOOK_TIMEOUT_MS: count('milliseconds', 100, 300_000),
  STEVEDORE_JOB_LOCK_SECONDS: count('seconds', 1, 3600),
  STEVEDORE_SHUTDOWN_GRACE_SECONDS: count('seconds', 0, 86_400),
  STEVEDORE_METRICS_PORT: count('port number', 0, 65535),
  STEVEDORE_SSE_HEARTBEAT_SECONDS: z.coerce
    .number({ error: 'must be a number of seconds' })
    .min(0.05, 'must be at least 0.05')
    .max(300, 'must be at most 300'),
  STEVEDORE_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], {
    error: 'must be one of fatal, error, warn, info, debug, trace, silent',
  }),
});

export interface AppConfig {
  http: { host: string; port: number };
  grpc: { port: number };
  adminToken?: string;
  stateDir: string;
  cacheDir: string;
  redisUrl?: string;
  /** STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: accept a REDIS_URL without a password (unsafe). */
  allowUnauthenticatedRedis: boolean;
  buildkitHost?: string;
  /** STEVEDORE_BUILDKIT_TLS_DIR: buildctl's --tlsdir (mutual TLS to a tcp:// buildkitd). */
  buildkitTlsDir?: string;
  registryMirror?: string;
  registryListen: string;
  logLevel: z.infer<typeof schema>['STEVEDORE_LOG_LEVEL'];
  jobRetentionSeconds: number;
  /** Worker concurrency by action name, from STEVEDORE_CONCURRENCY. */
  concurrency: Record<string, number>;
  registryAuthFile?: string;
  insecureRegistries: string[];
  /** host[:port]s a job's registry may be although local or private (STEVEDORE_REGISTRY_ALLOWED_HOSTS). */
  registryAllowedHosts: string[];
  bodyLimitBytes: number;
  sseHeartbeatMs: number;
  contextRoot?: string;
  contextMaxBytes: number;
  contextTtlSeconds: number;
  contextMaxExpandedBytes: number;
  contextMaxEntries: number;
  contextUploadTimeoutMs: number;
  /** STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES: unpacked bytes of contexts per tenant (0 = none). */
  tenantContextQuotaBytes: number;
  buildPlatforms: string[];
  /** host[:port]s a build's own fetches may reach although local or private (STEVEDORE_BUILD_ALLOWED_HOSTS). */
  buildAllowedHosts: string[];
  signing: { keysFile?: string; offline: boolean };
  smokeRuntime?: 'docker';
  trivy: { cacheDir: string; dbUpdate: boolean; serverUrl?: string; serverToken?: string };
  /** Build secrets by name; only the source (env var name or file path), never a value. */
  buildSecrets: Record<string, { env?: string; file?: string }>;
  /** AES-256-GCM key for secrets at rest (absent only where nothing needs it). */
  secretsKey?: Buffer;
  /** Defaults, and the ceilings a tenant's own admin key may grant (0 = none; see ApiKeysController). */
  tenancy: { apiKeyRateLimit: number; maxConcurrentJobs: number; tenantMaxRateLimit: number; tenantMaxConcurrentJobs: number };
  /** Open live event streams per API key and per tenant, per API process (0 = no cap). */
  streams: { perKey: number; perTenant: number };
  /** Repository patterns (docs/tenancy.md): `{tenant}` and `{mirror}` are filled in at use. */
  repositories: { tenantDefault: string[]; sharedRead: string[] };
  webhooks: { allowedHosts: string[]; attempts: number; retryBaseMs: number; timeoutMs: number };
  jobLockMs: number;
  /** A worker's metrics port (0 = none). */
  metricsPort: number;
  shutdownGraceMs: number;
  /** Absolute paths of the external tools, resolved from the cache, then PATH. */
  tools: { buildctl: string; buildkitd: string; trivy: string; cosign: string; redisServer: string; registry: string };
}

export class ConfigError extends Error {
  constructor(readonly problems: { variable: string; problem: string }[]) {
    super(`invalid configuration:\n${problems.map((p) => `  ${p.variable}: ${p.problem}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Reads and validates the environment; every bad variable is named in one error. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): AppConfig {
  const raw: Record<string, string> = {};
  for (const [name, spec] of Object.entries(CONFIG_VARIABLES)) raw[name] = env[name]?.trim() || spec.default;
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const variable = String(issue.path[0]);
        return { variable, problem: `${issue.message} (got ${JSON.stringify(redactIfSecret(variable, raw[variable]))})` };
      }),
    );
  }
  const c = parsed.data;
  return {
    http: { host: c.STEVEDORE_HTTP_HOST, port: c.STEVEDORE_HTTP_PORT },
    grpc: { port: c.STEVEDORE_GRPC_PORT },
    adminToken: c.STEVEDORE_TOKEN,
    stateDir: c.STEVEDORE_STATE_DIR,
    cacheDir: c.STEVEDORE_CACHE_DIR,
    redisUrl: c.REDIS_URL,
    allowUnauthenticatedRedis: c.STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS === 'true',
    buildkitHost: c.BUILDKIT_HOST,
    buildkitTlsDir: c.STEVEDORE_BUILDKIT_TLS_DIR,
    registryMirror: c.STEVEDORE_REGISTRY_MIRROR,
    registryListen: c.STEVEDORE_REGISTRY_LISTEN,
    logLevel: c.STEVEDORE_LOG_LEVEL,
    jobRetentionSeconds: c.STEVEDORE_JOB_RETENTION_SECONDS,
    concurrency: Object.fromEntries(
      c.STEVEDORE_CONCURRENCY.split(',')
        .filter(Boolean)
        .map((pair) => [pair.split('=')[0]!, Number(pair.split('=')[1])]),
    ),
    registryAuthFile: c.STEVEDORE_REGISTRY_AUTH_FILE,
    insecureRegistries: c.STEVEDORE_INSECURE_REGISTRIES,
    registryAllowedHosts: c.STEVEDORE_REGISTRY_ALLOWED_HOSTS,
    bodyLimitBytes: c.STEVEDORE_BODY_LIMIT_BYTES,
    sseHeartbeatMs: Math.round(c.STEVEDORE_SSE_HEARTBEAT_SECONDS * 1000),
    contextRoot: c.STEVEDORE_CONTEXT_ROOT,
    contextMaxBytes: c.STEVEDORE_CONTEXT_MAX_BYTES,
    contextTtlSeconds: c.STEVEDORE_CONTEXT_TTL_SECONDS,
    contextMaxExpandedBytes: c.STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES,
    contextMaxEntries: c.STEVEDORE_CONTEXT_MAX_ENTRIES,
    contextUploadTimeoutMs: c.STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS * 1000,
    tenantContextQuotaBytes: c.STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES,
    buildPlatforms: c.STEVEDORE_BUILD_PLATFORMS,
    buildAllowedHosts: c.STEVEDORE_BUILD_ALLOWED_HOSTS,
    buildSecrets: parseBuildSecrets(c.STEVEDORE_BUILD_SECRETS),
    smokeRuntime: c.STEVEDORE_SMOKE_RUNTIME || undefined,
    signing: { keysFile: c.STEVEDORE_SIGNING_KEYS_FILE, offline: c.STEVEDORE_SIGNING_OFFLINE === 'true' },
    trivy: {
      cacheDir: c.STEVEDORE_TRIVY_CACHE_DIR ?? join(c.STEVEDORE_STATE_DIR, 'trivy'),
      dbUpdate: c.STEVEDORE_TRIVY_DB_UPDATE === 'true',
      serverUrl: c.TRIVY_SERVER_URL,
      serverToken: c.TRIVY_TOKEN,
    },
    secretsKey: c.STEVEDORE_SECRETS_KEY ? Buffer.from(c.STEVEDORE_SECRETS_KEY, 'base64') : undefined,
    tenancy: {
      apiKeyRateLimit: c.STEVEDORE_API_KEY_RATE_LIMIT,
      maxConcurrentJobs: c.STEVEDORE_TENANT_MAX_CONCURRENT_JOBS,
      tenantMaxRateLimit: c.STEVEDORE_TENANT_MAX_RATE_LIMIT,
      tenantMaxConcurrentJobs: c.STEVEDORE_TENANT_MAX_CONCURRENT_JOBS_CEILING,
    },
    streams: { perKey: c.STEVEDORE_STREAMS_PER_KEY, perTenant: c.STEVEDORE_STREAMS_PER_TENANT },
    repositories: { tenantDefault: c.STEVEDORE_DEFAULT_TENANT_REPOSITORIES, sharedRead: c.STEVEDORE_SHARED_READ_REPOSITORIES },
    webhooks: {
      allowedHosts: c.STEVEDORE_WEBHOOK_ALLOWED_HOSTS,
      attempts: c.STEVEDORE_WEBHOOK_ATTEMPTS,
      retryBaseMs: c.STEVEDORE_WEBHOOK_RETRY_BASE_MS,
      timeoutMs: c.STEVEDORE_WEBHOOK_TIMEOUT_MS,
    },
    jobLockMs: c.STEVEDORE_JOB_LOCK_SECONDS * 1000,
    metricsPort: c.STEVEDORE_METRICS_PORT,
    shutdownGraceMs: c.STEVEDORE_SHUTDOWN_GRACE_SECONDS * 1000,
    tools: resolveTools(c.STEVEDORE_CACHE_DIR, env.PATH ?? ''),
  };
}

function parseBuildSecrets(spec: string): AppConfig['buildSecrets'] {
  const out: AppConfig['buildSecrets'] = {};
  for (const entry of spec.split(',').filter(Boolean)) {
    const i = entry.indexOf('=');
    const source = entry.slice(i + 1);
    out[entry.slice(0, i)] = source.startsWith('env:') ? { env: source.slice(4) } : { file: source.slice(5) };
  }
  return out;
}

function redactIfSecret(variable: string, value: string | undefined): string | undefined {
  if (variable === 'REDIS_URL' && value) return redactRedisUrl(value);
  return (variable === 'STEVEDORE_TOKEN' || variable === 'TRIVY_TOKEN' || variable === 'STEVEDORE_SECRETS_KEY') && value
    ? '<redacted>'
    : value;
}

/**
 * A Redis URL fit for a log line or serve.json: the password (and anything that could be
 * one, in a URL that does not parse) replaced by `***`.
 */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//***@');
  }
}

/** Whether a Redis URL carries a password (`redis://:PASSWORD@host` or `redis://user:PASSWORD@host`). No connection is made. */
export function redisUrlHasPassword(url: string): boolean {
  try {
    return new URL(url).password !== '';
  } catch {
    return false;
  }
}

/**
 * `api`, `worker` and `serve` with an external REDIS_URL refuse a Redis without a
 * password: whoever reaches it could read job records and queue jobs the workers run.
 * Decided from the URL alone (no password component = unauthenticated), before any
 * connection; STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS=true overrides it.
 */
export function assertRedisAuthenticated(config: Pick<AppConfig, 'redisUrl' | 'allowUnauthenticatedRedis'>): void {
  if (!config.redisUrl || config.allowUnauthenticatedRedis || redisUrlHasPassword(config.redisUrl)) return;
  throw new ConfigError([
    {
      variable: 'REDIS_URL',
      problem:
        `has no password (got ${JSON.stringify(redactRedisUrl(config.redisUrl))}). stevedore refuses ` +
        `a Redis without authentication: anyone who reaches it could read job records and queue jobs. ` +
        'Give Redis a password (requirepass, or an ACL user) and put it in the URL: redis://:PASSWORD@host:6379/0 (rediss:// for TLS). ' +
        'To accept the risk anyway, set STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS=true.',
    },
  ]);
}

function resolveTools(cacheDir: string, path: string): AppConfig['tools'] {
  const find = (name: string) => {
    for (const dir of [join(cacheDir, 'bin'), ...path.split(delimiter).filter(Boolean)]) {
      const candidate = join(dir, name);
      if (existsSync(candidate)) return candidate;
    }
    return name; // left to PATH at spawn time; the spawn error then names it
  };
  return {
    buildctl: find('buildctl'),
    buildkitd: find('buildkitd'),
    trivy: find('trivy'),
    cosign: find('cosign'),
    redisServer: find('redis-server'),
    registry: find('docker-registry'),
  };
}

/** Markdown table of the variables, for the README. */
export function describeConfig(): string {
  const rows = Object.entries(CONFIG_VARIABLES).map(
    ([name, v]) => `| \`${name}\` | ` + `${v.default ? `\`${v.default}\`` : '—'} | ${v.doc} |`,
  );
  return ['| variable | default | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
