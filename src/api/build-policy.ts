import type { AppConfig } from '../config/config.js';
import type { JobRequest } from '../jobs/job.types.js';
import type { TenantSecrets } from '../secrets/tenant-secrets.js';
import { ApiError } from './errors/api-error.js';

/**
 * What a build may ask for on this server: platforms from the allowed list, a
 * server-side Dockerfile only under STEVEDORE_CONTEXT_ROOT. Checked at submit, so a
 * refused build never reaches the queue. Secrets: assertBuildSecretsExist.
 */
export function checkBuildPolicy(request: JobRequest, config: Pick<AppConfig, 'buildPlatforms' | 'buildSecrets' | 'contextRoot'>): void {
  if (request.action !== 'build') return;
  const fields: { path: string; message: string }[] = [];
  (request.platforms ?? []).forEach((p, i) => {
    if (!config.buildPlatforms.includes(p)) fields.push({ path: `platforms.${i}`, message: `${p} is not allowed here (allowed: ${config.buildPlatforms.join(', ')})` });
  });
  if (!request.context && !request.dockerfile_inline && request.dockerfile_path && !config.contextRoot) {
    fields.push({ path: 'dockerfile_path', message: 'a build without a context needs STEVEDORE_CONTEXT_ROOT on the server; upload a context instead' });
  }
  if (fields.length) throw new ApiError(400, 'VALIDATION_FAILED', `invalid body: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, { fields });
}

/**
 * Every secret a build names must be the tenant's own (PUT /v1/secrets/{name}) or
 * server-configured (STEVEDORE_BUILD_SECRETS); the worker looks them up in the same
 * order. Another tenant's secret gets the same answer as a missing one. Without a
 * tenant store only server-configured secrets count.
 */
export async function assertBuildSecretsExist(request: JobRequest, tenant: string, config: Pick<AppConfig, 'buildSecrets'>, tenantSecrets: Pick<TenantSecrets, 'has'> | undefined): Promise<void> {
  if (request.action !== 'build' || !request.secrets?.length) return;
  const fields: { path: string; message: string }[] = [];
  for (const [i, name] of request.secrets.entries()) {
    if ((tenantSecrets && (await tenantSecrets.has(tenant, name))) || config.buildSecrets[name]) continue;
    fields.push({ path: `secrets.${i}`, message: `no secret named ${name} (PUT /v1/secrets/${name} first)` });
  }
  if (fields.length) throw new ApiError(400, 'VALIDATION_FAILED', `invalid body: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, { fields });
}
