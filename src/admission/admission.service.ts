import { Inject, Injectable } from '@nestjs/common';
import type { Principal } from '../auth/principal.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ContextOwners } from '../contexts/context-owners.js';
import { ContextStore } from '../contexts/context-store.js';
import { SigningKeys } from '../engines/cosign/signing-keys.js';
import { validate } from '../errors/validation.js';
import { idempotencyKeySchema } from '../jobs/job-request.schema.js';
import { JobService, type SubmitOutcome } from '../jobs/job.service.js';
import { PolicyStore } from '../policies/policy-store.js';
import { TenantSecrets } from '../secrets/tenant-secrets.js';
import { resolveNamedPolicy } from './named-policy.js';
import { parseJobRequest } from './parse-request.js';
import { checkSubmittable } from './submit-checks.js';

export interface SubmitOptions {
  idempotencyKey?: string;
  /** Kept on the job's first event and its log line, to find the submit again. */
  requestId?: string;
  /** Where the idempotency key came from, as a refusal names it (REST: the header; gRPC: the message). */
  idempotencyKeyIn?: 'header' | 'body';
}

/**
 * The one way a job gets in, for every transport: parse the body, check it against the
 * server's policy and the caller's rights (build policy, repositories, registries, build
 * secrets and sources, the callback URL, signing keys, the uploaded context), then queue
 * it. Refusals are AppErrors; each transport reports them its own way.
 */
@Injectable()
export class AdmissionService {
  constructor(
    private readonly jobs: JobService,
    private readonly contexts: ContextStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: SigningKeys,
    private readonly owners: ContextOwners,
    private readonly secrets: TenantSecrets,
    private readonly policies: PolicyStore,
  ) {}

  async submit(body: unknown, principal: Principal, options: SubmitOptions = {}): Promise<SubmitOutcome> {
    const { tenant } = principal;
    // A named policy is resolved first: the request queued carries its snapshot.
    const request = await resolveNamedPolicy(parseJobRequest(body), tenant, this.policies);
    await checkSubmittable(request, {
      config: this.config,
      contexts: this.contexts,
      keys: this.keys,
      owners: this.owners,
      tenant,
      principal,
      secrets: this.secrets,
    });
    const idempotencyKey =
      options.idempotencyKey === undefined
        ? undefined
        : validate(idempotencyKeySchema, options.idempotencyKey, options.idempotencyKeyIn ?? 'header');
    return this.jobs.submit(request, tenant, { idempotencyKey, requestId: options.requestId });
  }
}
