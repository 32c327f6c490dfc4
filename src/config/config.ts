import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { z } from 'zod';
import { configSchema as schema } from './config-schema.js';
import { CONFIG_VARIABLES } from './config-variables.js';

export { CONFIG_VARIABLES, type ConfigVariable } from './config-variables.js';

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
  /** STEVEDORE_CATALOGUE_RETENTION_DAYS: a catalogued image not seen this long is dropped. */
  catalogueRetentionDays: number;
  /** STEVEDORE_RESCAN_INTERVAL_SECONDS / _CONCURRENCY: rescans when Trivy's DB changes (0 s: off). */
  rescan: { intervalMs: number; concurrency: number };
  /** STEVEDORE_RECONCILE_INTERVAL_SECONDS / _AFTER_SECONDS: records left behind (jobs/job-reconciler.ts; 0 ms: off). */
  reconcile: { intervalMs: number; afterMs: number };
  /** Worker concurrency by action name, from STEVEDORE_CONCURRENCY. */
  concurrency: Record<string, number>;
  registryAuthFile?: string;
  insecureRegistries: string[];
  /** host[:port]s a job's registry may be although local or private (STEVEDORE_REGISTRY_ALLOWED_HOSTS). */
  registryAllowedHosts: string[];
  bodyLimitBytes: number;
  sseHeartbeatMs: number;
  /** STEVEDORE_EVENT_LOOP_DEGRADED_MS / _WINDOW_SECONDS: when /readyz says the event loop is degraded. */
  eventLoopDegraded: { thresholdMs: number; windowMs: number };
  contextRoot?: string;
  contextMaxBytes: number;
  contextTtlSeconds: number;
  contextMaxExpandedBytes: number;
  contextMaxEntries: number;
  contextUploadTimeoutMs: number;
  /** STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES: unpacked bytes of contexts per tenant (0 = none). */
  tenantContextQuotaBytes: number;
  buildPlatforms: string[];
  /** Platforms of the seeded base image (scripts/base-image.sh makes that set). */
  basePlatforms: string[];
  /** host[:port]s a build's own fetches may reach although local or private (STEVEDORE_BUILD_ALLOWED_HOSTS). */
  buildAllowedHosts: string[];
  signing: { keysFile?: string; offline: boolean };
  /** STEVEDORE_DEFAULT_PIPELINE: what a pushing build gets unasked; `required`: a request cannot switch it off. */
  defaultPipeline: DefaultPipeline;
  smokeRuntime: 'buildkit' | 'docker' | 'none';
  smokeTimeoutSeconds: number;
  /** dbUpdate: STEVEDORE_TRIVY_DB_UPDATE (true, false or 'auto'); dbRepositories and dbMaxBytes: Trivy's defaults when unset. */
  trivy: {
    cacheDir: string;
    dbUpdate: boolean | 'auto';
    dbRepositories?: string[];
    dbMaxBytes?: number;
    serverUrl?: string;
    serverToken?: string;
  };
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
  /** Exceptions as records: the horizon of `expires`, the per-tenant cap, the expiry sweep's period. */
  exceptions: { maxDays: number; maxPerTenant: number; sweepMs: number };
  jobLockMs: number;
  /** A worker's metrics port (0 = none). */
  metricsPort: number;
  shutdownGraceMs: number;
  /** Absolute paths of the external tools, resolved from the cache, then PATH. */
  tools: { buildctl: string; buildkitd: string; trivy: string; cosign: string; redisServer: string; registry: string };
}

export type PipelineDefault = 'off' | 'on' | 'required';
export interface DefaultPipeline {
  sbom: PipelineDefault;
  sign: PipelineDefault;
}

/** `sbom,sign!` → { sbom: 'on', sign: 'required' }; `none` → both off. */
export function parseDefaultPipeline(spec: string): DefaultPipeline {
  const out: DefaultPipeline = { sbom: 'off', sign: 'off' };
  for (const entry of spec.split(',')) {
    const name = entry.replace('!', '');
    if (name === 'sbom' || name === 'sign') out[name] = entry.endsWith('!') ? 'required' : 'on';
  }
  return out;
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
    catalogueRetentionDays: c.STEVEDORE_CATALOGUE_RETENTION_DAYS,
    rescan: { intervalMs: c.STEVEDORE_RESCAN_INTERVAL_SECONDS * 1000, concurrency: c.STEVEDORE_RESCAN_CONCURRENCY },
    reconcile: {
      intervalMs: Math.round(c.STEVEDORE_RECONCILE_INTERVAL_SECONDS * 1000),
      afterMs: Math.round(c.STEVEDORE_RECONCILE_AFTER_SECONDS * 1000),
    },
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
    eventLoopDegraded: {
      thresholdMs: c.STEVEDORE_EVENT_LOOP_DEGRADED_MS,
      windowMs: c.STEVEDORE_EVENT_LOOP_DEGRADED_WINDOW_SECONDS * 1000,
    },
    contextRoot: c.STEVEDORE_CONTEXT_ROOT,
    contextMaxBytes: c.STEVEDORE_CONTEXT_MAX_BYTES,
    contextTtlSeconds: c.STEVEDORE_CONTEXT_TTL_SECONDS,
    contextMaxExpandedBytes: c.STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES,
    contextMaxEntries: c.STEVEDORE_CONTEXT_MAX_ENTRIES,
    contextUploadTimeoutMs: c.STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS * 1000,
    tenantContextQuotaBytes: c.STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES,
    buildPlatforms: c.STEVEDORE_BUILD_PLATFORMS,
    basePlatforms: c.STEVEDORE_BASE_PLATFORMS,
    buildAllowedHosts: c.STEVEDORE_BUILD_ALLOWED_HOSTS,
    buildSecrets: parseBuildSecrets(c.STEVEDORE_BUILD_SECRETS),
    smokeRuntime: c.STEVEDORE_SMOKE_RUNTIME,
    smokeTimeoutSeconds: c.STEVEDORE_SMOKE_TIMEOUT_SECONDS,
    signing: { keysFile: c.STEVEDORE_SIGNING_KEYS_FILE, offline: c.STEVEDORE_SIGNING_OFFLINE === 'true' },
    defaultPipeline: parseDefaultPipeline(c.STEVEDORE_DEFAULT_PIPELINE),
    trivy: {
      cacheDir: c.STEVEDORE_TRIVY_CACHE_DIR ?? join(c.STEVEDORE_STATE_DIR, 'trivy'),
      dbUpdate: c.STEVEDORE_TRIVY_DB_UPDATE === 'auto' ? 'auto' : c.STEVEDORE_TRIVY_DB_UPDATE === 'true',
      dbRepositories: c.STEVEDORE_TRIVY_DB_REPOSITORY,
      dbMaxBytes: c.STEVEDORE_TRIVY_DB_MAX_BYTES,
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
    exceptions: {
      maxDays: c.STEVEDORE_EXCEPTION_MAX_DAYS,
      maxPerTenant: c.STEVEDORE_EXCEPTION_MAX_PER_TENANT,
      sweepMs: Math.round(c.STEVEDORE_EXCEPTION_SWEEP_SECONDS * 1000),
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
