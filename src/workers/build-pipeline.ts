import { join } from 'node:path';
import type { BuildRequest } from '../jobs/actions.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { JobResult } from '../jobs/job-types.js';
import type { JobContext } from './processor.js';
import { pushImage } from './push-stage.js';
import { scanImage, type ScanDeps, type ScanOutcome } from './scan-stage.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import { signImage, signingKey, type SigningDeps } from './sign-stage.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { generateSboms, type PipelinePlan, type PlatformSbom } from './sbom-stage.js';
import { diffForBuildResult, type BuildDiffDeps } from './build-diff-stage.js';

/**
 * The scan, sign and push stages' dependencies (the same as their actions'); `catalogue`
 * finds the previous build of a tag for the result's `diff` (absent: no diff).
 */
export type PipelineDeps = ScanDeps & SigningDeps & { registries: RegistryResolver; catalogue?: BuildDiffDeps['catalogue'] };

export interface Stage {
  name: 'build' | 'scan' | 'gate' | 'sbom' | 'sign' | 'attest' | 'push';
  state: 'succeeded' | 'failed' | 'skipped';
  duration_ms: number;
}

/**
 * After a build: scan → gate → sbom → sign → attest → copy, each stage's result merged
 * into the job result. A failing gate stops the pipeline before anything is signed or
 * copied. Each stage runs as its action would, on the pushed digest, within this job.
 * `plan` adds the server's default stages (SBOM, signature: sbom-stage.ts); the result's
 * `pipeline` says what became of each, and why when skipped. A scan's SBOM is reused,
 * so there is an `sbom` stage only in a pipeline without a scan. Last, `diff`: what
 * changed since the previous build of each tag (build-diff-stage.ts), never a failure.
 */
export async function runPipeline(
  ctx: JobContext<'build'>,
  pinned: string,
  buildResult: Partial<JobResult>,
  stages: Stage[],
  deps: PipelineDeps,
  plan: PipelinePlan,
): Promise<Partial<JobResult>> {
  const request: BuildRequest = ctx.job.request;
  const result: Partial<JobResult> = { ...buildResult };
  // A stage's entry is listed when it starts: stages run side by side keep a fixed order.
  const stage = async <T>(name: Stage['name'], work: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const entry: Stage = { name, state: 'failed', duration_ms: 0 };
    stages.push(entry);
    await ctx.progress(`stage ${name} started`, { stage: name, state: 'started' });
    try {
      const out = await work();
      Object.assign(entry, { state: 'succeeded', duration_ms: Date.now() - started });
      await ctx.progress(`stage ${name} succeeded`, { stage: name, state: 'succeeded' });
      return out;
    } catch (err) {
      entry.duration_ms = Date.now() - started;
      if (err instanceof JobFailure) err.details.stages = stages;
      throw err;
    }
  };

  let scanned: ScanOutcome | undefined;
  if (request.scan) {
    scanned = await stage('scan', () => scanImage(deps, ctx.job, { image: pinned, ...request.scan }, ctx));
    Object.assign(result, {
      vulnerabilities: scanned.vulnerabilities,
      summary: scanned.summary,
      secrets: scanned.secrets,
      policy: scanned.policy,
      artifacts: scanned.artifacts,
      scanner: scanned.scanner,
    });
    const verdict = scanned.policy;
    const outcome = scanned;
    await stage('gate', async () => {
      if (!verdict.passed) {
        throw new JobFailure(
          'POLICY_FAILED',
          `policy gate failed: ${verdict.violations.map((v) => `${v.id} (${[v.severity, v.rule].filter(Boolean).join(', ')})`).join(', ')}`,
          false,
          // The image is pushed already: what the catalogue records of a gated build (catalogue/from-job.ts).
          {
            violations: verdict.violations,
            policy: verdict,
            digest: parseImageReference(pinned).digest,
            summary: outcome.summary,
            scanner: outcome.scanner,
            artifacts: outcome.artifacts,
            platforms: outcome.platforms.map((p) => p.platform),
          },
        );
      }
    });
  }
  // Signing by default needs a key; asked for (or mandatory), a missing one fails the job.
  const keyName = typeof request.sign === 'object' ? request.sign.key : undefined;
  const pipeline: { sbom?: string; sign?: string } = {};
  const noSign = !plan.sign ? plan.signOff : !plan.signRequired && !keyName && !deps.keys.keys.length ? 'no signing key' : undefined;
  // The SBOM of each platform manifest: the scan's when the request scans (no second Trivy
  // run). Made by Trivy, it does not depend on the signature: both run side by side (Trivy
  // reads layers while cosign signs manifests), and both finish before a failure is reported.
  let sboms: PlatformSbom[] | undefined;
  if (plan.sbom && scanned)
    sboms = scanned.platforms.map((p) => ({ platform: p.platform, manifest_digest: p.manifest_digest, sbom: p.artifacts.sbom }));
  const [made, signed] = await Promise.allSettled([
    plan.sbom && !scanned ? stage('sbom', () => generateSboms(deps, ctx.job.id, pinned, ctx)) : undefined,
    noSign === undefined ? stage('sign', () => signImage(deps, pinned, keyName, ctx)) : undefined,
  ]);
  if (made.status === 'rejected') throw made.reason;
  if (signed.status === 'rejected') throw signed.reason;
  if (made.value) {
    sboms = made.value;
    result.artifacts = (await deps.artifacts.list(ctx.job.id)).map((a) => a.name);
  }
  if (sboms) result.sbom = sboms.map((s) => ({ platform: s.platform, digest: s.manifest_digest, artifact: s.sbom }));
  if (signed.value) {
    result.signed = signed.value.signed;
    pipeline.sign = `signed with key ${signed.value.signed.key}`;
  } else {
    pipeline.sign = `skipped: ${noSign}`;
  }

  // Attestations are signed with the image's key: without a signature, none.
  const types = [...(sboms ? (['cyclonedx'] as const) : []), ...(scanned ? (['vuln'] as const) : [])];
  if (result.signed && types.length) {
    await stage('attest', async () => {
      const key = signingKey(deps.keys, keyName);
      const dir = deps.artifacts.dir(ctx.job.id);
      const repo = parseImageReference(pinned);
      // Each platform manifest gets its own SBOM and vulnerability report.
      const platforms = scanned ? scanned.platforms : sboms!.map((s) => ({ ...s, artifacts: undefined }));
      const attested: { platform: string; digest: string; types: string[] }[] = [];
      for (const p of platforms) {
        const target = formatImageReference({ registry: repo.registry, repository: repo.repository, digest: p.manifest_digest });
        const sbom = sboms?.find((s) => s.manifest_digest === p.manifest_digest);
        await ctx.fence(`attestations of ${target}`);
        if (sbom) await deps.cosign.attest(target, key, 'cyclonedx', join(dir, sbom.sbom), ctx.signal);
        if (p.artifacts) {
          const vulnPredicate = join(dir, `vuln.cosign.${p.manifest_digest.replace(':', '-')}.json`);
          await deps.trivy.convert(join(dir, p.artifacts.report), 'cosign-vuln', vulnPredicate, ctx.signal);
          await deps.cosign.attest(target, key, 'vuln', vulnPredicate, ctx.signal);
        }
        attested.push({ platform: p.platform, digest: p.manifest_digest, types: [...types] });
      }
      // `attestations` (the types) is kept for clients that read it; `attested` says which
      // platform manifest carries them (an index's attestations are per platform, not on it).
      result.attestations = [...types];
      result.attested = attested;
    });
  }
  pipeline.sbom = !sboms
    ? `skipped: ${plan.sbomOff}`
    : result.signed
      ? 'attached'
      : `stored as an artifact, attestation skipped: ${noSign === 'no signing key' ? 'no signing key' : `not signed (${noSign})`}`;
  result.pipeline = pipeline;
  if (request.push_to) {
    const targets = request.push_to;
    const pushed = await stage('push', () => pushImage(deps.registries, pinned, targets, ctx));
    result.pushed = pushed.pushed;
  }
  if (deps.catalogue) {
    const tags = Array.isArray(result.tags) ? result.tags.filter((t): t is string => typeof t === 'string') : [];
    const diff = await diffForBuildResult(
      { catalogue: deps.catalogue, artifacts: deps.artifacts },
      {
        tenant: ctx.job.tenant,
        job_id: ctx.job.id,
        digest: parseImageReference(pinned).digest!,
        tags,
        // A scan's SBOMs whether or not the sbom stage is on (the scan always writes them).
        sboms: scanned
          ? scanned.platforms.map((p) => ({ platform: p.platform, artifact: p.artifacts.sbom }))
          : (sboms ?? []).map((s) => ({ platform: s.platform, artifact: s.sbom })),
        ...(scanned
          ? {
              scan: {
                vulnerabilities: scanned.vulnerabilities,
                platforms: scanned.platforms.map((p) => p.platform),
                db_updated_at: scanned.scanner.db_updated_at,
                vulnerabilities_scanned: scanned.scanner.scanners.includes('vuln'),
                filter: { severity: request.scan?.severity, ignore_unfixed: request.scan?.ignore_unfixed },
              },
            }
          : {}),
      },
      ctx,
    );
    if (diff) result.diff = diff;
  }
  return result;
}
