import { createHash } from 'node:crypto';
import { assertPlatform, formatImageReference, isLoopbackRegistry, parseImageReference } from '../../oci/references.js';

/** Everything one build needs, already validated and resolved to local paths. */
export interface BuildSpec {
  /** Directory sent as the build context, or a git URL (`https://…#ref:subdir`). */
  context: { dir: string } | { git: string };
  /** Directory holding the Dockerfile (none: read it from a git context), and its file name. */
  dockerfileDir?: string;
  dockerfileName: string;
  target?: string;
  buildArgs: Record<string, string>;
  platforms: string[];
  tags: string[];
  push: boolean;
  labels: Record<string, string>;
  /** Registry cache ref (import + export, mode=max); none to build without it. */
  cacheRef?: string;
  noCache: boolean;
  /** Secrets: id and where buildctl reads them (an env var of its own environment, or a file). */
  secrets: { id: string; env?: string; file?: string }[];
  provenance: boolean;
  /** OCI annotations on the image (created, source, revision). */
  annotations: Record<string, string>;
  insecureRegistries: string[];
  metadataFile: string;
  /**
   * Per-tenant cache salt (tenantCacheSalt). BuildKit keys a RUN step by its command, env,
   * mounts and extra hosts, never by secret values, and keys cache mounts by id alone; so
   * the salt goes into every RUN step's extra hosts and every cache mount's namespace, and
   * one tenant's step is never served from another's cache. Not the hostname, which would
   * also do: BuildKit creates a fresh network namespace for every step with a custom
   * hostname instead of taking one from its pool (+175 ms per RUN step, bench/sandbox).
   */
  cacheSalt: string;
}

/**
 * A plain build of `dir`/Dockerfile pushed to `tags`: no build args, labels, secrets,
 * annotations or provenance (verify's builds, the benches). `overrides` sets the rest.
 */
export function pushedDockerfileSpec(dir: string, tags: string[], cacheSalt: string, overrides: Partial<BuildSpec> = {}): BuildSpec {
  return {
    context: { dir },
    dockerfileDir: dir,
    dockerfileName: 'Dockerfile',
    buildArgs: {},
    platforms: [],
    tags,
    push: true,
    labels: {},
    noCache: false,
    secrets: [],
    provenance: false,
    annotations: {},
    insecureRegistries: [],
    metadataFile: `${dir}/metadata.json`,
    cacheSalt,
    ...overrides,
  };
}

/**
 * Build args the Dockerfile frontend reads as its own options and that would undo the
 * isolation below: the cache-mount namespace, the RUN hostname, a `# syntax` frontend
 * image, and attestation options (which can name a generator image). Other BUILDKIT_*
 * names (BUILDKIT_INLINE_CACHE, BUILDKIT_MULTI_PLATFORM, a Dockerfile's own
 * BUILDKIT_IMAGE, …) are ordinary.
 */
const RESERVED_BUILD_ARGS = new Set(['BUILDKIT_CACHE_MOUNT_NS', 'BUILDKIT_SANDBOX_HOSTNAME', 'BUILDKIT_SYNTAX']);
export const RESERVED_BUILD_ARG_NOTE =
  'BUILDKIT_CACHE_MOUNT_NS, BUILDKIT_SANDBOX_HOSTNAME, BUILDKIT_SYNTAX ' +
  'and BUILDKIT_ATTEST_* are reserved: they would override build isolation';
/** Whether a tenant may pass this build arg. */
export const isTenantBuildArg = (name: string) => !RESERVED_BUILD_ARGS.has(name) && !name.startsWith('BUILDKIT_ATTEST_');
const SALT = /^stv-[a-z0-9]{1,59}$/;

/** The cache salt of a tenant: a hostname-safe label derived from its name. */
export function tenantCacheSalt(tenant: string): string {
  return `stv-${createHash('sha256').update(`stevedore-tenant:${tenant}`).digest('hex').slice(0, 20)}`;
}

const BUILD_ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/;
const STAGE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const SECRET_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** Values that go inside buildctl's CSV options (--output, --secret) must not break them. */
const CSV_SAFE = /^[^,"'\n\r\x00]*$/;

export class BuildSpecError extends Error {}

function check(ok: boolean, message: string): void {
  if (!ok) throw new BuildSpecError(message);
}

/**
 * The buildctl argument array for a spec. Every value was validated by the API; this
 * checks again, because it is the last step before a command line.
 */
export function buildctlArgs(address: string, spec: BuildSpec): string[] {
  const args = ['--addr', address, 'build', '--frontend', 'dockerfile.v0', '--progress', 'rawjson', '--metadata-file', spec.metadataFile];
  if ('dir' in spec.context) args.push('--local', `context=${spec.context.dir}`);
  else args.push('--opt', `context=${spec.context.git}`);
  if (spec.dockerfileDir) args.push('--local', `dockerfile=${spec.dockerfileDir}`);
  args.push('--opt', `filename=${spec.dockerfileName}`);
  if (spec.target) {
    check(STAGE.test(spec.target), `invalid target ${JSON.stringify(spec.target)}`);
    args.push('--opt', `target=${spec.target}`);
  }
  for (const [name, value] of Object.entries(spec.buildArgs)) {
    check(BUILD_ARG_NAME.test(name), `invalid build arg name ${JSON.stringify(name)}`);
    check(isTenantBuildArg(name), `build arg ${name} is reserved`);
    check(!value.includes('\0'), `build arg ${name} contains a NUL byte`);
    args.push('--opt', `build-arg:${name}=${value}`);
  }
  if (spec.platforms.length) {
    spec.platforms.forEach(assertPlatform);
    args.push('--opt', `platform=${spec.platforms.join(',')}`);
  }
  for (const [key, value] of Object.entries(spec.labels)) {
    check(LABEL_KEY.test(key), `invalid label key ${JSON.stringify(key)}`);
    check(!/[\n\r\x00]/.test(value), `label ${key} contains a line break`);
    args.push('--opt', `label:${key}=${value}`);
  }
  check(SALT.test(spec.cacheSalt), 'invalid cache salt');
  // `cmdline` makes the built-in frontend ignore `# syntax=` lines (no frontend image of the
  // tenant's choosing, which could drop the namespace); the gateway frontend is off too.
  args.push(
    '--opt',
    `add-hosts=${spec.cacheSalt}.stevedore.invalid=127.0.0.1`,
    '--opt',
    `build-arg:BUILDKIT_CACHE_MOUNT_NS=${spec.cacheSalt}`,
    '--opt',
    'cmdline=',
  );
  if (spec.noCache) args.push('--no-cache');
  for (const secret of spec.secrets) {
    check(SECRET_ID.test(secret.id), `invalid secret id ${JSON.stringify(secret.id)}`);
    if (secret.env) args.push('--secret', `id=${secret.id},env=${secret.env}`);
    else if (secret.file && CSV_SAFE.test(secret.file)) args.push('--secret', `id=${secret.id},src=${secret.file}`);
    else throw new BuildSpecError(`secret ${secret.id} has no usable source`);
  }
  if (spec.provenance && spec.push) args.push('--opt', 'attest:provenance=mode=max');
  args.push('--output', outputOption(spec));
  // The cache is an optimisation: a failed export (a registry hiccup) must not fail a build that succeeded.
  if (spec.cacheRef && !spec.noCache) {
    const ref = canonicalTag(spec.cacheRef);
    const insecure = registryInsecure(ref, spec.insecureRegistries) ? ',registry.insecure=true' : '';
    args.push(
      '--import-cache',
      `type=registry,ref=${ref}${insecure}`,
      '--export-cache',
      `type=registry,ref=${ref},mode=max,ignore-error=true${insecure}`,
    );
  }
  return args;
}

function outputOption(spec: BuildSpec): string {
  if (!spec.tags.length) return 'type=image,push=false';
  const names = spec.tags.map(canonicalTag);
  const parts = ['type=image', `"name=${names.join(',')}"`, `push=${spec.push}`];
  if (spec.push && names.some((n) => registryInsecure(n, spec.insecureRegistries))) parts.push('registry.insecure=true');
  for (const [key, value] of Object.entries(spec.annotations)) {
    check(LABEL_KEY.test(key) && CSV_SAFE.test(value), `annotation ${key} cannot be passed safely`);
    parts.push(`annotation.${key}=${value}`);
  }
  return parts.join(',');
}

/** A tag as a full reference, refusing anything that could break buildctl's CSV. */
function canonicalTag(tag: string): string {
  const ref = parseImageReference(tag);
  check(!ref.digest, `tag ${tag} must not carry a digest`);
  const full = formatImageReference(ref);
  check(CSV_SAFE.test(full), `tag ${tag} cannot be passed safely`);
  return full;
}

function registryInsecure(reference: string, insecure: string[]): boolean {
  const host = parseImageReference(reference).registry;
  return !isLoopbackRegistry(host) && insecure.includes(host);
}
