import { readFile } from 'node:fs/promises';
import type { AppConfig } from '../config/config.js';
import type { BuildSpec } from '../engines/buildkit/build-command.js';
import { SecretsUnavailableError, SecretUnreadableError, type TenantSecrets } from '../secrets/tenant-secrets.js';
import { JobFailure } from '../jobs/job-failure.js';

/** Where buildctl finds each secret, and the values for its environment only. */
export interface ResolvedBuildSecrets {
  specs: BuildSpec['secrets'];
  /** Decrypted tenant secrets by env var name: for buildctl's child env, nowhere else. */
  env: Record<string, string>;
  /**
   * Every value the build can read (tenant ones, and the server's from their env var or
   * file): for masking its output only (SecretMasker), never written anywhere.
   */
  values: string[];
}

/** buildctl's env holds only the minimal tool environment and secret variables: these names are the tenant ones'. */
const envName = (i: number) => `STEVEDORE_TENANT_SECRET_${i}`;

/**
 * A build's secrets by name: the tenant's own first, then the server-configured one,
 * the same order the API checked at submit. A tenant secret is decrypted here, at
 * build time, and handed to buildctl as `--secret id=NAME,env=VAR` with the value in
 * the child's environment: never in its arguments, an event, a log line or an error.
 */
export async function resolveBuildSecrets(
  names: readonly string[],
  tenant: string,
  deps: { tenantSecrets?: Pick<TenantSecrets, 'resolve'>; buildSecrets: AppConfig['buildSecrets'] },
): Promise<ResolvedBuildSecrets> {
  const specs: BuildSpec['secrets'] = [];
  const env: Record<string, string> = {};
  const values: string[] = [];
  for (const name of new Set(names)) {
    const value = await tenantValue(name, tenant, deps.tenantSecrets);
    if (value !== undefined) {
      const variable = envName(specs.length);
      env[variable] = value;
      values.push(value);
      specs.push({ id: name, env: variable });
    } else if (deps.buildSecrets[name]) {
      specs.push({ id: name, ...deps.buildSecrets[name] });
      const known = await serverValue(deps.buildSecrets[name]);
      if (known !== undefined) values.push(known);
    } else {
      // Deleted since the job was submitted.
      throw new JobFailure('SECRET_NOT_FOUND', `no secret named ${name}`, false, { secret: name });
    }
  }
  return { specs, env, values };
}

/** A server build secret's value as buildctl will read it; unreadable: buildctl reports that. */
async function serverValue(source: { env?: string; file?: string }): Promise<string | undefined> {
  if (source.env) return process.env[source.env];
  return source.file ? readFile(source.file, 'utf8').catch(() => undefined) : undefined;
}

async function tenantValue(name: string, tenant: string, store: Pick<TenantSecrets, 'resolve'> | undefined): Promise<string | undefined> {
  if (!store) return undefined;
  try {
    const value = await store.resolve(tenant, name);
    // The API refuses NUL bytes; an env var cannot carry one and spawn's error would quote it.
    if (value !== undefined && value.includes('\0')) throw new SecretUnreadableError(name);
    return value;
  } catch (err) {
    if (err instanceof SecretUnreadableError) throw new JobFailure('SECRET_UNREADABLE', err.message, false, { secret: name });
    if (err instanceof SecretsUnavailableError) throw new JobFailure('SECRETS_UNAVAILABLE', err.message, false, { secret: name });
    throw err;
  }
}
