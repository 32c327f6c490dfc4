import type { AppConfig } from '../config/config.js';
import type { Principal } from '../auth/principal.js';
import { ContextError, type ContextStore } from '../contexts/context-store.js';
import type { ContextOwners } from '../contexts/context-owners.js';
import { NO_SIGNING_KEYS, type SigningKeys } from '../engines/cosign/signing-keys.js';
import { AppError } from '../errors/app-error.js';
import { invalidFields } from '../errors/validation.js';
import type { JobRequest } from '../jobs/job-types.js';
import type { TenantSecrets } from '../secrets/tenant-secrets.js';
import { assertCallbackAllowed, CallbackRefused } from '../webhooks/callback-guard.js';
import { assertBuildSecretsExist, assertBuildSourcesAllowed, checkBuildPolicy } from './build-policy.js';
import { checkJobRegistries } from './registry-policy.js';
import { checkJobRepositories } from './repository-policy.js';

/** Server policy and references to stored things (an uploaded context), before queueing. */
export interface SubmitChecks {
  config: AppConfig;
  contexts: ContextStore;
  owners: ContextOwners;
  keys?: SigningKeys;
  tenant: string;
  /** Whose repositories bound the images the job reads and writes (docs/tenancy.md). */
  principal: Pick<Principal, 'tenant' | 'root' | 'repositories'>;
  /** The tenant's build secrets; without it only server-configured ones are accepted. */
  secrets?: Pick<TenantSecrets, 'has'>;
}

export async function checkSubmittable(
  request: JobRequest,
  { config, contexts, owners, keys, tenant, principal, secrets }: SubmitChecks,
): Promise<void> {
  checkBuildPolicy(request, config);
  checkJobRepositories(request, principal, config);
  await checkJobRegistries(request, config);
  await assertBuildSecretsExist(request, tenant, config, secrets);
  await assertBuildSourcesAllowed(request, config);
  if (request.callback_url) await checkCallback(request.callback_url, config.webhooks.allowedHosts);
  const signing =
    request.action === 'sign' || request.action === 'verify'
      ? { key: request.key, path: 'key' }
      : request.action === 'build' && request.sign
        ? { key: typeof request.sign === 'object' ? request.sign.key : undefined, path: 'sign.key' }
        : undefined;
  if (signing && keys) {
    const problem = signing.key
      ? keys.has(signing.key)
        ? undefined
        : `no signing key named ${signing.key}`
      : keys.keys.length
        ? undefined
        : NO_SIGNING_KEYS;
    if (problem) throw invalidFields([{ path: signing.path, message: problem }]);
  }
  if ((request.action === 'build' || request.action === 'optimize') && request.context && 'upload' in request.context) {
    try {
      // Another tenant's upload answers exactly like a missing one.
      if (!(await owners.owns(tenant, request.context.upload)))
        throw new ContextError(
          'CONTEXT_NOT_FOUND',
          `no build context ${request.context.upload} (never uploaded, or unused for longer than ${config.contextTtlSeconds} s)`,
        );
      await contexts.path(request.context.upload);
    } catch (err) {
      // Whatever is wrong with the stored context, the request names it: a 400 on context.upload.
      if (err instanceof ContextError)
        throw new AppError('invalid', err.code, err.message, { fields: [{ path: 'context.upload', message: err.message }] });
      throw err;
    }
  }
}

/** The SSRF guard's refusal of a callback URL, reported on the field. */
async function checkCallback(url: string, allowedHosts: readonly string[]): Promise<void> {
  try {
    await assertCallbackAllowed(url, allowedHosts);
  } catch (err) {
    if (err instanceof CallbackRefused) throw invalidFields([{ path: 'callback_url', message: err.message }]);
    throw err;
  }
}
