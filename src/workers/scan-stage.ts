import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import { DEFAULT_POLICY, evaluatePolicy, type PolicyVerdict } from '../engines/trivy/scan-policy.js';
import { ScannerUnavailableError, TrivyScanError, type TrivyClient } from '../engines/trivy/trivy-client.js';
import {
  normalizeReport,
  type SecretFinding,
  type ScanSummary,
  type TrivyReport,
  type Vulnerability,
} from '../engines/trivy/trivy-report.js';
import type { ScanRequest } from '../jobs/actions.js';
import type { ArtifactStore } from '../jobs/artifact-store.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import type { StageContext } from './processor.js';

export interface ScanDeps {
  trivy: TrivyClient;
  inspector: ImageInspector;
  artifacts: ArtifactStore;
  redis: Redis;
  cacheTtlSeconds: number;
}

/** What to scan and how: a scan request's fields (a build's pipeline passes its pushed digest). */
export type ScanTarget = Pick<ScanRequest, 'image' | 'platform' | 'scanners' | 'severity' | 'ignore_unfixed' | 'policy'>;

type Scanner = 'vuln' | 'secret';

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
  artifacts: { report: string; sbom: string; sarif: string };
}

export type ScanOutcome = {
  image_info: Record<string, unknown>;
  vulnerabilities: Vulnerability[];
  summary: ScanSummary;
  secrets: SecretFinding[];
  policy: PolicyVerdict;
  cached: boolean;
  scanner: { name: 'trivy'; db_updated_at: string | null; scanners: Scanner[] };
  artifacts: string[];
  /** Every platform scanned (one entry for a single-platform image). */
  platforms: ScannedPlatform[];
};

interface CachedScan {
  job_id: string;
  vulnerabilities: Vulnerability[];
  secrets: SecretFinding[];
  summary: ScanSummary;
}

/**
 * Trivy against the image in its registry, findings normalised, gate evaluated; the
 * reports are the job's artifacts. `job` is the job running it (its id names the
 * artifacts, its tenant scopes the scan cache).
 */
export async function scanImage(
  deps: ScanDeps,
  job: { id: string; tenant: string },
  target: ScanTarget,
  ctx: StageContext,
): Promise<ScanOutcome> {
  const info = await deps.inspector.inspect(target.image, target.platform).catch((err: unknown) => {
    throw toInspectFailure(err);
  });
  const ref = parseImageReference(target.image);
  const pinned = formatImageReference({ registry: ref.registry, repository: ref.repository, digest: info.manifest_digest });
  const platform = [info.os, info.architecture, info.variant].filter(Boolean).join('/');
  const scanners = [...new Set(target.scanners ?? ['vuln', 'secret'])].sort() as Scanner[];
  const dbUpdatedAt = await deps.trivy.dbUpdatedAt();
  // Same image, platform, DB and options: same findings. Per tenant: a cached scan
  // names the repository it was made from (targets, the copied Trivy report) and the
  // job that made it, which another tenant must not learn.
  const cacheKey = `stv:scan:${createHash('sha256')
    .update(
      JSON.stringify([
        job.tenant,
        info.manifest_digest,
        platform,
        dbUpdatedAt ?? '',
        scanners,
        [...(target.severity ?? [])].sort(),
        !!target.ignore_unfixed,
      ]),
    )
    .digest('hex')}`;

  let scan: CachedScan;
  let cached = false;
  const hit = dbUpdatedAt ? await deps.redis.get(cacheKey) : null;
  if (hit) {
    scan = JSON.parse(hit) as CachedScan;
    cached = true;
    await deps.artifacts.copy(scan.job_id, job.id).catch(() => undefined);
    await ctx.progress(`answered from the scan cache (scan of job ${scan.job_id})`);
  } else {
    await ctx.progress(`scanning ${pinned} (${scanners.join(', ')})`);
    scan = { job_id: job.id, ...(await runTrivy(deps, job.id, pinned, scanners, target, ctx.signal)) };
    if (dbUpdatedAt) await deps.redis.set(cacheKey, JSON.stringify(scan), 'EX', deps.cacheTtlSeconds);
  }
  // The gate is evaluated on every request: policies and allow-list expiries change.
  const policy = evaluatePolicy(scan.vulnerabilities, { ...DEFAULT_POLICY, ...(target.policy ?? {}) });
  return {
    platforms: [
      {
        platform,
        manifest_digest: info.manifest_digest,
        summary: scan.summary,
        policy,
        cached,
        artifacts: { report: 'trivy-report.json', sbom: 'sbom.cdx.json', sarif: 'report.sarif.json' },
      },
    ],
    image_info: info as unknown as Record<string, unknown>,
    vulnerabilities: scan.vulnerabilities,
    summary: scan.summary,
    secrets: scan.secrets,
    policy,
    cached,
    scanner: { name: 'trivy', db_updated_at: dbUpdatedAt ?? null, scanners },
    artifacts: (await deps.artifacts.list(job.id)).map((a) => a.name),
  };
}

async function runTrivy(deps: ScanDeps, jobId: string, pinned: string, scanners: Scanner[], target: ScanTarget, signal: AbortSignal) {
  const dir = await deps.artifacts.prepare(jobId);
  const report = join(dir, 'trivy-report.json');
  try {
    await deps.trivy.scanImage(pinned, report, { scanners, severity: target.severity, ignoreUnfixed: target.ignore_unfixed, signal });
    await deps.trivy.convert(report, 'sarif', join(dir, 'report.sarif.json'), signal);
    await deps.trivy.convert(report, 'cyclonedx', join(dir, 'sbom.cdx.json'), signal);
  } catch (err) {
    if (err instanceof ScannerUnavailableError) throw new JobFailure('SCANNER_UNAVAILABLE', err.message);
    if (err instanceof TrivyScanError) throw new JobFailure(err.notFound ? 'IMAGE_NOT_FOUND' : 'SCAN_FAILED', err.message);
    throw err;
  }
  return normalizeReport(JSON.parse(await readFile(report, 'utf8')) as TrivyReport);
}
