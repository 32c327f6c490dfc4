import type { AppConfig } from '../config/config.js';
import { DOCKER_HUB } from '../oci/references.js';
import { ACTION_TABLE, type ImageUse } from '../jobs/actions.js';
import type { JobRequest } from '../jobs/job-types.js';
import type { Principal } from '../auth/principal.js';
import { canonicalRepository, matchesAny, normalizePattern } from '../auth/repository-patterns.js';
import { AppError } from '../errors/app-error.js';

/**
 * Which registry repositories a caller may read and write (docs/tenancy.md,
 * "Repositories per tenant"). Checked at submission, for REST and gRPC alike, so a
 * refused job never reaches a worker or a registry.
 */
export type RepositoryTarget = ImageUse;
export type RepositoryAccess = ImageUse['access'];
type PolicyConfig = Pick<AppConfig, 'repositories' | 'registryMirror' | 'registryListen'>;
type PolicyPrincipal = Pick<Principal, 'tenant' | 'root' | 'repositories'>;

/** Every repository a job reads or writes, with the field that names it: its action's row says (jobs/actions.ts). */
export function repositoryTargets(request: JobRequest): RepositoryTarget[] {
  // The row's `images` takes that row's request; TypeScript cannot pair the two through the union.
  const images = ACTION_TABLE[request.action].images as (r: JobRequest) => ImageUse[];
  return images(request);
}

const expand = (patterns: readonly string[], tenant: string, config: PolicyConfig) => {
  const mirror = config.registryMirror ?? config.registryListen;
  return patterns.map((p) => p.replaceAll('{tenant}', tenant).replaceAll('{mirror}', mirror)).filter(valid);
};
// A tenant name that is no repository segment (e.g. `team-`) makes a `{tenant}` pattern invalid: it then grants nothing.
const valid = (pattern: string) => {
  try {
    normalizePattern(pattern);
    return true;
  } catch {
    return false;
  }
};

/** What the caller may write: its key's `repositories`, else the operator's per-tenant default. */
export function writablePatterns(principal: PolicyPrincipal, config: PolicyConfig): string[] {
  return principal.repositories ? [...principal.repositories] : expand(config.repositories.tenantDefault, principal.tenant, config);
}

/**
 * Why the caller may not do this, or undefined when it may. Tenants never write Docker
 * Hub names (buildkitd and the server route docker.io to the mirror) nor `library/` on
 * any registry (what `FROM debian` resolves to in the mirror, which may be reached
 * under names this check cannot tell apart), whatever their patterns say.
 */
export function repositoryRefusal(
  target: Omit<RepositoryTarget, 'path'>,
  principal: PolicyPrincipal,
  config: PolicyConfig,
): string | undefined {
  if (principal.root) return undefined;
  const repository = canonicalRepository(target.reference);
  if (target.access === 'write') {
    if (repository.startsWith(`${DOCKER_HUB}/`))
      return `Docker Hub names (${repository}) are read-only for tenants: they resolve to the server's mirror`;
    if (repository.split('/')[1] === 'library')
      return `${repository} is under library/, which is reserved for base images (read-only for tenants)`;
  }
  const writable = writablePatterns(principal, config);
  if (matchesAny(writable, target.reference)) return undefined;
  if (target.access === 'read' && matchesAny(expand(config.repositories.sharedRead, principal.tenant, config), target.reference))
    return undefined;
  const has = principal.repositories
    ? 'its repositories'
    : writable.length
      ? "the server's default repositories for its tenant"
      : 'no repositories (the key sets none and the server has no default)';
  return `${repository} is outside the repositories this API key may ${target.access} (it has ${has})`;
}

/** 403 REPOSITORY_FORBIDDEN for the first target the caller may not touch; details list every one. */
export function assertRepositoriesAllowed(targets: RepositoryTarget[], principal: PolicyPrincipal, config: PolicyConfig): void {
  if (principal.root) return;
  const refused = targets.flatMap((t) => {
    const reason = repositoryRefusal(t, principal, config);
    return reason ? [{ path: t.path, reference: t.reference, repository: canonicalRepository(t.reference), access: t.access, reason }] : [];
  });
  const first = refused[0];
  if (!first) return;
  throw new AppError('forbidden', 'REPOSITORY_FORBIDDEN', `${first.path}: ${first.reason}`, { ...first, refused });
}

/** The one call from checkSubmittable. */
export function checkJobRepositories(request: JobRequest, principal: PolicyPrincipal, config: PolicyConfig): void {
  assertRepositoriesAllowed(repositoryTargets(request), principal, config);
}
