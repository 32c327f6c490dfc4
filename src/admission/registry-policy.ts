import type { AppConfig } from '../config/config.js';
import { RegistryGuard } from '../engines/registry/registry-guard.js';
import { InvalidReferenceError, parseImageReference } from '../oci/references.js';
import type { JobRequest } from '../jobs/job-types.js';
import { AppError } from '../errors/app-error.js';
import { repositoryTargets } from './repository-policy.js';

type GuardConfig = Pick<AppConfig, 'registryMirror' | 'registryListen' | 'insecureRegistries' | 'registryAllowedHosts'>;

/**
 * Issue 14: a job may name a registry on a loopback, private, link-local or metadata
 * address only when the operator configured that registry (RegistryGuard). Checked at
 * submission for every reference a job reads or writes (inspect, scan, sign, verify,
 * push sources and destinations, build tags, whose repository also holds the build
 * cache, push_to, optimize images; the same list as repository-policy), and again by
 * the registry client at connect time. The answer names the field and never depends on
 * what listens at that address: nothing is sent there.
 */
export async function assertRegistriesAllowed(targets: { path: string; reference: string }[], config: GuardConfig): Promise<void> {
  const guard = RegistryGuard.fromConfig(config);
  const refused: { path: string; reference: string; registry: string; reason: string }[] = [];
  const seen = new Map<string, Promise<string | undefined>>();
  for (const t of targets) {
    let registry: string;
    try {
      registry = parseImageReference(t.reference).registry;
    } catch (err) {
      if (err instanceof InvalidReferenceError) continue; // the schema answers for those
      throw err;
    }
    if (!seen.has(registry)) seen.set(registry, guard.problem(registry));
    const reason = await seen.get(registry)!;
    if (reason) refused.push({ path: t.path, reference: t.reference, registry, reason });
  }
  const first = refused[0];
  if (!first) return;
  throw new AppError('invalid', 'REGISTRY_FORBIDDEN', `${first.path}: ${first.reason}`, {
    path: first.path,
    reference: first.reference,
    registry: first.registry,
    refused,
  });
}

/** The one call from checkSubmittable. */
export function checkJobRegistries(request: JobRequest, config: GuardConfig): Promise<void> {
  return assertRegistriesAllowed(repositoryTargets(request), config);
}
