import type { AppConfig } from '../config/config.js';
import type { JobRequest } from '../jobs/job-types.js';
import type { TenantSecrets } from '../secrets/tenant-secrets.js';
import { invalidFields } from '../errors/validation.js';
import { isAllowedHost, isBlockedAddress, resolveAll } from '../net/address-policy.js';
import { isIP } from 'node:net';
import { parseHostPort } from '../oci/references.js';

/**
 * What a build may ask for on this server: platforms from the allowed list, a
 * server-side Dockerfile only under STEVEDORE_CONTEXT_ROOT, no opting out of a
 * mandatory default stage. Checked at submit, so a
 * refused build never reaches the queue. Secrets: assertBuildSecretsExist.
 */
export function checkBuildPolicy(
  request: JobRequest,
  config: Pick<AppConfig, 'buildPlatforms' | 'buildSecrets' | 'contextRoot' | 'defaultPipeline'>,
): void {
  // optimize `verify` builds (and smoke-runs) both Dockerfiles for `platform`: the same list applies.
  if (request.action === 'optimize' && request.verify && request.platform && !config.buildPlatforms.includes(request.platform))
    throw invalidFields([
      { path: 'platform', message: `${request.platform} is not allowed here (allowed: ${config.buildPlatforms.join(', ')})` },
    ]);
  if (request.action !== 'build') return;
  const fields: { path: string; message: string }[] = [];
  // A mandatory default stage (STEVEDORE_DEFAULT_PIPELINE `sbom!` / `sign!`) cannot be switched off.
  for (const stage of ['sbom', 'sign'] as const) {
    if (request[stage] === false && config.defaultPipeline[stage] === 'required')
      fields.push({
        path: stage,
        message:
          `the server policy requires ${stage === 'sbom' ? 'an SBOM' : 'a signature'} on every pushed image ` +
          `(STEVEDORE_DEFAULT_PIPELINE includes ${stage}!): ${stage}: false is not allowed here`,
      });
  }
  (request.platforms ?? []).forEach((p, i) => {
    if (!config.buildPlatforms.includes(p))
      fields.push({ path: `platforms.${i}`, message: `${p} is not allowed here (allowed: ${config.buildPlatforms.join(', ')})` });
  });
  if (!request.context && !request.dockerfile_inline && request.dockerfile_path && !config.contextRoot) {
    fields.push({
      path: 'dockerfile_path',
      message: 'a build without a context needs STEVEDORE_CONTEXT_ROOT on the server; upload a context instead',
    });
  }
  if (fields.length) throw invalidFields(fields);
}

/**
 * Every secret a build names must be the tenant's own (PUT /v1/secrets/{name}) or
 * server-configured (STEVEDORE_BUILD_SECRETS); the worker looks them up in the same
 * order. Another tenant's secret gets the same answer as a missing one. Without a
 * tenant store only server-configured secrets count.
 */
export async function assertBuildSecretsExist(
  request: JobRequest,
  tenant: string,
  config: Pick<AppConfig, 'buildSecrets'>,
  tenantSecrets: Pick<TenantSecrets, 'has'> | undefined,
): Promise<void> {
  if (request.action !== 'build' || !request.secrets?.length) return;
  const fields: { path: string; message: string }[] = [];
  for (const [i, name] of request.secrets.entries()) {
    if ((tenantSecrets && (await tenantSecrets.has(tenant, name))) || config.buildSecrets[name]) continue;
    fields.push({ path: `secrets.${i}`, message: `no secret named ${name} (PUT /v1/secrets/${name} first)` });
  }
  if (fields.length) throw invalidFields(fields);
}

/** Host and port of a git URL in the three forms the schema takes (http(s)://, ssh://, git@host:path). */
export function gitUrlHost(url: string): { host: string; port: number } {
  const scp = /^[^@/]+@([^:/]+):/.exec(url);
  if (scp && !url.includes('://')) return { host: scp[1]!.toLowerCase(), port: 22 };
  const parsed = new URL(url);
  const port = parsed.port ? Number(parsed.port) : ({ 'http:': 80, 'https:': 443, 'ssh:': 22 }[parsed.protocol] ?? 0);
  return { host: parsed.hostname.replace(/^\[|\]$/g, '').toLowerCase(), port };
}

/**
 * A git context is fetched by buildkitd from the host's network: it may not name a
 * loopback, private, link-local or metadata address (after DNS resolution) unless the
 * operator allows the host (STEVEDORE_BUILD_ALLOWED_HOSTS, as host or host:port). The
 * build firewall refuses the same at connect time; this answers early and clearly.
 */
export async function assertBuildSourcesAllowed(request: JobRequest, config: Pick<AppConfig, 'buildAllowedHosts'>): Promise<void> {
  if (request.action !== 'build' || !request.context || !('git' in request.context)) return;
  let target: { host: string; port: number };
  try {
    target = gitUrlHost(request.context.git);
  } catch {
    return refuse('is not a URL git can fetch');
  }
  const allowed = config.buildAllowedHosts
    .map(parseHostPort)
    .some((e) => isAllowedHost(target.host, [e.host]) && (e.port === undefined || e.port === target.port));
  if (allowed) return;
  const addresses = isIP(target.host) ? [target.host] : (await resolveAll(target.host).catch(() => [])).map((a) => a.address);
  if (!addresses.length) return refuse(`${target.host} does not resolve`);
  const bad = addresses.find(isBlockedAddress);
  if (bad)
    return refuse(
      `${target.host}${bad === target.host ? '' : ` resolves to ${bad}, which`} is a loopback, private, link-local or ` +
        `reserved address; builds fetch from such hosts only when the operator allows them (STEVEDORE_BUILD_ALLOWED_HOSTS)`,
    );
}

function refuse(problem: string): never {
  throw invalidFields([{ path: 'context.git', message: problem }]);
}
