import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { ImageInfo, ImageInspector } from '../engines/registry/image-inspector.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import { DEFAULT_POLICY, evaluatePolicy, type PolicyVerdict } from '../engines/trivy/scan-policy.js';
import { scopeMatches } from '../exceptions/exception-scope.js';
import { asPolicyException, type VulnerabilityException } from '../exceptions/exception-store.js';
import { sbomPurls, scanVexDocument } from '../exceptions/openvex.js';
import type { TrivyClient } from '../engines/trivy/trivy-client.js';
import type { SecretFinding, ScanSummary, Vulnerability } from '../engines/trivy/trivy-report.js';
import type { ScanRequest } from '../jobs/actions.js';
import { scanArtifactNames, SCAN_ARTIFACTS, type ArtifactStore, type ScanArtifactNames } from '../jobs/artifact-store.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import type { PolicySnapshot } from '../policies/policy.schema.js';
import { judgeScan, withNamedPolicy } from '../policies/scan-judgement.js';
import type { StageContext } from './processor.js';
import { combineFindings, type CombinedVerdict, type Located } from './scan-combine.js';
import { runTrivy, storedSbom, type TrivySource } from './scan-trivy.js';

export interface ScanDeps {
  trivy: TrivyClient;
  inspector: ImageInspector;
  artifacts: ArtifactStore;
  redis: Redis;
  cacheTtlSeconds: number;
  /** The tenants' exceptions (POST /v1/exceptions); absent: none apply. */
  exceptions?: { active(tenant: string, now?: Date): Promise<VulnerabilityException[]> };
}

/** What to scan and how: a scan request's fields (a build's pipeline passes its pushed digest). */
export type ScanTarget = Pick<ScanRequest, 'image' | 'platform' | 'scanners' | 'severity' | 'ignore_unfixed' | 'policy'> & {
  /** Set by admission when `policy` names a policy (admission/named-policy.ts): what the scan is judged by. */
  policy_snapshot?: PolicySnapshot;
  /**
   * A rescan's stored SBOMs (job-types.ts RescanOrigin): a platform manifest listed here
   * is scanned from its SBOM (`trivy sbom`), so no layer is pulled again; one missing or
   * gone past its retention is scanned from the image as usual.
   */
  sbom_from?: { job_id: string; artifacts: Record<string, string> };
};

export type Scanner = 'vuln' | 'secret';

/**
 * One platform's scan. Its reports are artifact files of the job (names in `artifacts`):
 * the build pipeline attests each platform manifest with its own SBOM and vulnerability
 * report. Contract shared by the scan action and the pipeline (issue 16).
 */
export interface ScannedPlatform {
  platform: string;
  /** The platform manifest that was scanned (what attestations attach to). */
  manifest_digest: string;
  summary: ScanSummary;
  policy: PolicyVerdict;
  cached: boolean;
  artifacts: ScanArtifactNames;
}

export type ScanOutcome = {
  /** The default platform's image, as inspect shows it (`platforms` lists them all). */
  image_info: Record<string, unknown>;
  /** Over every platform scanned, each listing where it was found (scan-combine.ts). */
  vulnerabilities: Located<Vulnerability>[];
  summary: ScanSummary;
  secrets: Located<SecretFinding>[];
  /** Passed only when every platform passed; violations name their platform. */
  policy: CombinedVerdict;
  /** Every platform answered from the scan cache. */
  cached: boolean;
  scanner: { name: 'trivy'; db_updated_at: string | null; scanners: Scanner[] };
  artifacts: string[];
  /** Every platform scanned (one entry for a single-platform image). */
  platforms: ScannedPlatform[];
};

interface CachedScan {
  job_id: string;
  /** Where that job put the reports (absent in entries older than per-platform names: the plain ones). */
  artifacts?: ScanArtifactNames;
  vulnerabilities: Vulnerability[];
  secrets: SecretFinding[];
  summary: ScanSummary;
  /** When Trivy ran (absent in entries written before named policies). */
  scanned_at?: string;
}

interface PlatformScan extends CachedScan {
  platform: string;
  info: ImageInfo;
  cached: boolean;
  exceptions: VulnerabilityException[];
}

/** Where the VEX document given to Trivy for a platform goes (beside its report). */
export const vexArtifactName = (names: ScanArtifactNames) => names.report.replace(/^trivy-report/, 'vex.openvex');

/**
 * Trivy against the image in its registry, findings normalised, gate evaluated; the
 * reports are the job's artifacts. `job` is the job running it (its id names the
 * artifacts, its tenant scopes the scan cache). An index is scanned platform by platform
 * (each platform manifest by digest) unless the target names one platform.
 */
export async function scanImage(
  deps: ScanDeps,
  job: { id: string; tenant: string },
  target: ScanTarget,
  ctx: StageContext,
): Promise<ScanOutcome> {
  const named = target.platform && target.platform !== 'all' ? target.platform : undefined;
  const inspect = (image: string, platform?: string) =>
    deps.inspector.inspect(image, platform).catch((err: unknown) => {
      throw toInspectFailure(err);
    });
  const info = await inspect(target.image, named);
  const ref = parseImageReference(target.image);
  const pin = (digest: string) => formatImageReference({ registry: ref.registry, repository: ref.repository, digest });
  const platformOf = (i: ImageInfo) => [i.os, i.architecture, i.variant].filter(Boolean).join('/');
  // An index's platforms as it lists them (attestation manifests left out by the
  // inspector), each inspected through the index's digest so a moving tag cannot mix
  // two versions of the image.
  const several = !named && info.digest !== info.manifest_digest && new Set(info.platforms).size > 1;
  const platforms = several ? [...new Set(info.platforms)] : [platformOf(info)];
  const names = scanArtifactNames(platforms);
  const scanners = [...new Set(target.scanners ?? ['vuln', 'secret'])].sort() as Scanner[];
  const dbUpdatedAt = await deps.trivy.dbUpdatedAt();
  const policyOf = { ...DEFAULT_POLICY, ...(typeof target.policy === 'object' ? target.policy : {}) };
  const namedPolicy = target.policy_snapshot;
  if (typeof target.policy === 'string' && !namedPolicy)
    throw new JobFailure('POLICY_NOT_FOUND', `policy ${target.policy} was not resolved when the job was admitted`);
  const exceptions = (await deps.exceptions?.active(job.tenant)) ?? [];

  // One platform at a time: a Trivy run already keeps the cores busy, and they are shared
  // with the other jobs.
  const scans: PlatformScan[] = [];
  for (const [i, platform] of platforms.entries()) {
    const platformInfo = several ? await inspect(pin(info.digest), platform) : info;
    const pinned = pin(platformInfo.manifest_digest);
    // The exceptions whose scope covers this image: its repository, the index or the platform manifest.
    const image = { repository: ref.repository, digests: [info.digest, platformInfo.manifest_digest] };
    const matched = exceptions.filter((e) => scopeMatches(e.scope, image));
    const scanned = await scanPlatform(
      deps,
      job,
      { platform, info: platformInfo, pinned, names: names[i]!, scanners, dbUpdatedAt, repository: ref.repository, exceptions: matched },
      target,
      ctx,
    );
    scans.push({ ...scanned, platform, info: platformInfo, exceptions: matched });
  }
  // The gate is evaluated on every request: policies, allow-list and exception expiries change.
  // A named policy also reads each platform's report (its packages, advisory dates).
  const now = new Date();
  const judged = namedPolicy
    ? await Promise.all(
        scans.map((s, i) =>
          judgeScan(
            namedPolicy,
            {
              vulnerabilities: s.vulnerabilities,
              reportPath: join(deps.artifacts.dir(job.id), names[i]!.report),
              scannedAt: s.scanned_at,
            },
            now,
            s.exceptions.map(asPolicyException),
          ),
        ),
      )
    : undefined;
  const perPlatform = scans.map((s, i) => ({
    ...s,
    policy: judged?.[i] ?? evaluatePolicy(s.vulnerabilities, policyOf, now, s.exceptions.map(asPolicyException)),
  }));
  const combined = combineFindings(perPlatform);
  if (namedPolicy && judged) combined.policy = withNamedPolicy(combined.policy, namedPolicy, judged);
  return {
    platforms: perPlatform.map((s, i) => ({
      platform: s.platform,
      manifest_digest: s.info.manifest_digest,
      summary: s.summary,
      policy: s.policy,
      cached: s.cached,
      artifacts: names[i]!,
    })),
    image_info: info as unknown as Record<string, unknown>,
    ...combined,
    cached: scans.every((s) => s.cached),
    scanner: { name: 'trivy', db_updated_at: dbUpdatedAt ?? null, scanners },
    artifacts: (await deps.artifacts.list(job.id)).map((a) => a.name),
  };
}

/** One platform manifest: from the scan cache when it has it, else Trivy; reports under `names`. */
async function scanPlatform(
  deps: ScanDeps,
  job: { id: string; tenant: string },
  p: {
    platform: string;
    info: ImageInfo;
    pinned: string;
    names: ScanArtifactNames;
    scanners: Scanner[];
    dbUpdatedAt: string | undefined;
    repository: string;
    exceptions: VulnerabilityException[];
  },
  target: ScanTarget,
  ctx: StageContext,
): Promise<CachedScan & { cached: boolean }> {
  // The matching exceptions go to Trivy as OpenVEX (`--vex`), so the findings they cover
  // carry the VEX status; the document is kept as an artifact of the job.
  // A rescan scans the stored SBOM where it has one (copied into this job first).
  const sbom = await storedSbom(deps, job.id, p.info.manifest_digest, p.names, target);
  let vexFile: string | undefined;
  if (p.exceptions.length) {
    vexFile = join(await deps.artifacts.prepare(job.id), vexArtifactName(p.names));
    // From an SBOM the image's root has no purl for Trivy to match: name every package too.
    const packages = sbom ? sbomPurls(JSON.parse(await readFile(sbom, 'utf8'))) : undefined;
    const doc = scanVexDocument(
      { repository: p.repository, manifestDigest: p.info.manifest_digest, ...(packages ? { packages } : {}) },
      p.exceptions,
    );
    await writeFile(vexFile, JSON.stringify(doc, null, 2));
  }
  // Same image, platform, DB and options: same findings. Per tenant: a cached scan
  // names the repository it was made from (targets, the copied Trivy report) and the
  // job that made it, which another tenant must not learn.
  const cacheKey = `stv:scan:${createHash('sha256')
    .update(
      JSON.stringify([
        job.tenant,
        p.info.manifest_digest,
        p.platform,
        p.dbUpdatedAt ?? '',
        p.scanners,
        [...(target.severity ?? [])].sort(),
        !!target.ignore_unfixed,
        // Another set of exceptions is another VEX document: other statuses in the report.
        p.exceptions.map((e) => `${e.id}:${e.vulnerability_id}`).sort(),
      ]),
    )
    .digest('hex')}`;
  const hit = p.dbUpdatedAt ? await deps.redis.get(cacheKey) : null;
  if (hit) {
    const scan = JSON.parse(hit) as CachedScan;
    // That job's reports, copied under this job's names for the platform (an earlier
    // scan may have named them otherwise). Gone past their retention: scan again.
    const from = scan.artifacts ?? SCAN_ARTIFACTS;
    const copied = await Promise.all(
      (['report', 'sbom', 'sarif'] as const).map((k) =>
        deps.artifacts.copyOne({ job: scan.job_id, name: from[k] }, { job: job.id, name: p.names[k] }).then(
          () => true,
          () => false,
        ),
      ),
    );
    if (copied.every(Boolean)) {
      await ctx.progress(`${p.platform}: answered from the scan cache (scan of job ${scan.job_id})`);
      return { ...scan, artifacts: p.names, cached: true };
    }
  }
  await ctx.progress(
    sbom
      ? `scanning ${p.platform} ${p.pinned} from its stored SBOM (vuln)`
      : `scanning ${p.platform} ${p.pinned} (${p.scanners.join(', ')})`,
  );
  const source: TrivySource = { image: p.pinned, ...(sbom ? { sbom } : {}) };
  const scan: CachedScan = {
    job_id: job.id,
    artifacts: p.names,
    scanned_at: new Date().toISOString(),
    ...(await runTrivy(deps, job.id, source, p.names, sbom ? ['vuln'] : p.scanners, target, ctx.signal, vexFile)),
  };
  if (p.dbUpdatedAt) await deps.redis.set(cacheKey, JSON.stringify(scan), 'EX', deps.cacheTtlSeconds);
  return { ...scan, cached: false };
}
