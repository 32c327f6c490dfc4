import { invalidFields } from '../errors/validation.js';
import type { JobRequest } from '../jobs/job-types.js';
import type { PolicySnapshot } from '../policies/policy.schema.js';
import type { PolicyStore } from '../policies/policy-store.js';

/**
 * `policy: "<name>"` on a scan, sign or push (or `scan.policy` on a build) resolved
 * against the tenant's policies at admission: an unknown name (or another tenant's) is a
 * 400 on that field; a known one is recorded beside it as `policy_snapshot` (name,
 * version, rules), which is what the worker judges by and what the job keeps, whatever
 * becomes of the policy.
 */
export async function resolveNamedPolicy(request: JobRequest, tenant: string, policies: Pick<PolicyStore, 'get'>): Promise<JobRequest> {
  if ((request.action === 'scan' || request.action === 'sign' || request.action === 'push') && typeof request.policy === 'string')
    return Object.assign({}, request, { policy_snapshot: await snapshot(tenant, request.policy, 'policy', policies) });
  if (request.action === 'build' && request.scan && typeof request.scan.policy === 'string') {
    const policy_snapshot = await snapshot(tenant, request.scan.policy, 'scan.policy', policies);
    return { ...request, scan: { ...request.scan, policy_snapshot } } as JobRequest;
  }
  return request;
}

async function snapshot(tenant: string, name: string, path: string, policies: Pick<PolicyStore, 'get'>): Promise<PolicySnapshot> {
  const stored = await policies.get(tenant, name);
  if (!stored) throw invalidFields([{ path, message: `no policy named ${name} (PUT /v1/policies/${name} first)` }]);
  return { name: stored.name, version: stored.version, updated_at: stored.updated_at, rules: stored.rules };
}
