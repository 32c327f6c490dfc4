import { join } from 'node:path';
import type { CosignClient } from '../engines/cosign/cosign-client.js';
import type { SigningKeys } from '../engines/cosign/signing-keys.js';
import type { TrivyClient } from '../engines/trivy/trivy-client.js';
import type { ArtifactStore } from '../jobs/artifact-store.js';
import type { BuildRequest, JobResult } from '../jobs/job-types.js';
import type { PushProcessor } from './push.processor.js';
import type { ScanProcessor } from './scan.processor.js';
import { signingKey, type SignProcessor } from './sign.processor.js';
import { JobFailure, type JobContext } from './processor.js';

export interface PipelineDeps {
  scan: ScanProcessor;
  sign: SignProcessor;
  push: PushProcessor;
  cosign: CosignClient;
  keys: SigningKeys;
  trivy: TrivyClient;
  artifacts: ArtifactStore;
}

export interface Stage {
  name: 'build' | 'scan' | 'gate' | 'sign' | 'attest' | 'push';
  state: 'succeeded' | 'failed' | 'skipped';
  duration_ms: number;
}

/**
 * After a build: scan → gate → sign → attest → copy, each stage's result merged into the
 * job result. A failing gate stops the pipeline before anything is signed or copied.
 */
export async function runPipeline(ctx: JobContext<'build'>, pinned: string, buildResult: Partial<JobResult>, stages: Stage[], deps: PipelineDeps): Promise<Partial<JobResult>> {
  const request: BuildRequest = ctx.job.request;
  const result: Partial<JobResult> = { ...buildResult };
  // Each stage runs as its action would, on the pushed digest, within this job.
  const as = <A extends 'scan' | 'sign' | 'push'>(action: A, body: object) => ({ ...ctx, job: { ...ctx.job, action, request: { action, ...body } } }) as unknown as JobContext<A>;
  const stage = async <T>(name: Stage['name'], work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    await ctx.progress(`stage ${name} started`, { stage: name, state: 'started' });
    try {
      const out = await work();
      stages.push({ name, state: 'succeeded', duration_ms: Date.now() - started });
      await ctx.progress(`stage ${name} succeeded`, { stage: name, state: 'succeeded' });
      return out;
    } catch (err) {
      stages.push({ name, state: 'failed', duration_ms: Date.now() - started });
      if (err instanceof JobFailure) err.details.stages = stages;
      throw err;
    }
  };

  if (request.scan) {
    const scanned = await stage('scan', () => deps.scan.process(as('scan', { image: pinned, ...request.scan })));
    Object.assign(result, { vulnerabilities: scanned.vulnerabilities, summary: scanned.summary, secrets: scanned.secrets, policy: scanned.policy, artifacts: scanned.artifacts });
    await stage('gate', async () => {
      const verdict = scanned.policy as { passed: boolean; violations: { id: string; severity: string; rule: string }[] };
      if (!verdict.passed) {
        throw new JobFailure('POLICY_FAILED', `policy gate failed: ${verdict.violations.map((v) => `${v.id} (${v.severity}, ${v.rule})`).join(', ')}`, false, { violations: verdict.violations, policy: verdict });
      }
    });
  }
  if (request.sign) {
    const keyName = typeof request.sign === 'object' ? request.sign.key : undefined;
    const signed = await stage('sign', () => deps.sign.process(as('sign', { image: pinned, ...(keyName ? { key: keyName } : {}) })));
    result.signed = signed.signed;
    if (request.scan) {
      await stage('attest', async () => {
        const key = signingKey(deps.keys, keyName);
        const dir = deps.artifacts.dir(ctx.job.id);
        const vulnPredicate = join(dir, 'vuln.cosign.json');
        await deps.trivy.convert(join(dir, 'trivy-report.json'), 'cosign-vuln', vulnPredicate, ctx.signal);
        await deps.cosign.attest(pinned, key, 'cyclonedx', join(dir, 'sbom.cdx.json'), ctx.signal);
        await deps.cosign.attest(pinned, key, 'vuln', vulnPredicate, ctx.signal);
        result.attestations = ['cyclonedx', 'vuln'];
      });
    }
  }
  if (request.push_to) {
    const pushed = await stage('push', () => deps.push.process(as('push', { image: pinned, destinations: request.push_to })));
    result.pushed = pushed.pushed;
  }
  return result;
}
