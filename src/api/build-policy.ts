import type { AppConfig } from '../config/config.js';
import type { JobRequest } from '../jobs/job.types.js';
import { ApiError } from './errors/api-error.js';

/**
 * What a build may ask for on this server: platforms from the allowed list, secrets
 * the server has, a server-side Dockerfile only under STEVEDORE_CONTEXT_ROOT. Checked at
 * submit, so a refused build never reaches the queue.
 */
export function checkBuildPolicy(request: JobRequest, config: Pick<AppConfig, 'buildPlatforms' | 'buildSecrets' | 'contextRoot'>): void {
  if (request.action !== 'build') return;
  const fields: { path: string; message: string }[] = [];
  (request.platforms ?? []).forEach((p, i) => {
    if (!config.buildPlatforms.includes(p)) fields.push({ path: `platforms.${i}`, message: `${p} is not allowed here (allowed: ${config.buildPlatforms.join(', ')})` });
  });
  (request.secrets ?? []).forEach((name, i) => {
    if (!config.buildSecrets[name]) fields.push({ path: `secrets.${i}`, message: `no server-side secret named ${name}` });
  });
  if (!request.context && !request.dockerfile_inline && request.dockerfile_path && !config.contextRoot) {
    fields.push({ path: 'dockerfile_path', message: 'a build without a context needs STEVEDORE_CONTEXT_ROOT on the server; upload a context instead' });
  }
  if (fields.length) throw new ApiError(400, 'VALIDATION_FAILED', `invalid body: ${fields.map((f) => `${f.path}: ${f.message}`).join('; ')}`, { fields });
}
