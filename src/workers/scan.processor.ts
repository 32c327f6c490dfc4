import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import { formatImageReference, parseImageReference } from '../engines/references.js';
import { DEFAULT_POLICY, evaluatePolicy } from '../engines/trivy/scan-policy.js';
import { ScannerUnavailableError, TrivyScanError, type TrivyClient } from '../engines/trivy/trivy-client.js';
import { normalizeReport, type SecretFinding, type ScanSummary, type Vulnerability } from '../engines/trivy/trivy-report.js';
import type { ArtifactStore } from '../jobs/artifact-store.js';
import type { JobResult } from '../jobs/job-types.js';
import { toInspectFailure } from './inspect.processor.js';
import { JobFailure, type ActionProcessor, type JobContext } from './processor.js';

export interface ScanDeps {
  trivy: TrivyClient;
  inspector: ImageInspector;
  artifacts: ArtifactStore;
  redis: Redis;
  cacheTtlSeconds: number;
}

interface CachedScan {
  job_id: string;
  vulnerabilities: Vulnerability[];
  secrets: SecretFinding[];
  summary: ScanSummary;
}

/** scan: Trivy against the image in its registry, findings normalised, gate evaluated. */
export class ScanProcessor implements ActionProcessor<'scan'> {
  readonly action = 'scan' as const;

  constructor(private readonly deps: ScanDeps) {}

  async process(ctx: JobContext<'scan'>): Promise<Partial<JobResult>> {
    const request = ctx.job.request;
    const info = await this.deps.inspector.inspect(request.image, request.platform).catch((err: unknown) => {
      throw toInspectFailure(err);
    });
    const ref = parseImageReference(request.image);
    const pinned = formatImageReference({ registry: ref.registry, repository: ref.repository, digest: info.manifest_digest });
    const platform = [info.os, info.architecture, info.variant].filter(Boolean).join('/');
    const scanners = [...new Set(request.scanners ?? ['vuln', 'secret'])].sort() as ('vuln' | 'secret')[];
    const dbUpdatedAt = await this.deps.trivy.dbUpdatedAt();
    // Same image, platform, DB and options: same findings. Per tenant: a cached scan
    // names the repository it was made from (targets, the copied Trivy report) and the
    // job that made it, which another tenant must not learn.
    const cacheKey = `stv:scan:${createHash('sha256').update(JSON.stringify([ctx.job.tenant, info.manifest_digest, platform, dbUpdatedAt ?? '', scanners, [...(request.severity ?? [])].sort(), !!request.ignore_unfixed])).digest('hex')}`;

    let scan: CachedScan;
    let cached = false;
    const hit = dbUpdatedAt ? await this.deps.redis.get(cacheKey) : null;
    if (hit) {
      scan = JSON.parse(hit) as CachedScan;
      cached = true;
      await this.deps.artifacts.copy(scan.job_id, ctx.job.id).catch(() => undefined);
      await ctx.progress(`answered from the scan cache (scan of job ${scan.job_id})`);
    } else {
      await ctx.progress(`scanning ${pinned} (${scanners.join(', ')})`);
      scan = { job_id: ctx.job.id, ...(await this.runTrivy(ctx, pinned, scanners)) };
      if (dbUpdatedAt) await this.deps.redis.set(cacheKey, JSON.stringify(scan), 'EX', this.deps.cacheTtlSeconds);
    }
    // The gate is evaluated on every request: policies and allow-list expiries change.
    const policy = evaluatePolicy(scan.vulnerabilities, { ...DEFAULT_POLICY, ...(request.policy ?? {}) });
    return {
      image_info: info as unknown as Record<string, unknown>,
      vulnerabilities: scan.vulnerabilities,
      summary: scan.summary,
      secrets: scan.secrets,
      policy,
      cached,
      scanner: { name: 'trivy', db_updated_at: dbUpdatedAt ?? null, scanners },
      artifacts: (await this.deps.artifacts.list(ctx.job.id)).map((a) => a.name),
    };
  }

  private async runTrivy(ctx: JobContext<'scan'>, pinned: string, scanners: ('vuln' | 'secret')[]) {
    const dir = await this.deps.artifacts.prepare(ctx.job.id);
    const report = join(dir, 'trivy-report.json');
    try {
      await this.deps.trivy.scanImage(pinned, report, { scanners, severity: ctx.job.request.severity, ignoreUnfixed: ctx.job.request.ignore_unfixed, signal: ctx.signal });
      await this.deps.trivy.convert(report, 'sarif', join(dir, 'report.sarif.json'), ctx.signal);
      await this.deps.trivy.convert(report, 'cyclonedx', join(dir, 'sbom.cdx.json'), ctx.signal);
    } catch (err) {
      if (err instanceof ScannerUnavailableError) throw new JobFailure('SCANNER_UNAVAILABLE', err.message);
      if (err instanceof TrivyScanError) throw new JobFailure(err.notFound ? 'IMAGE_NOT_FOUND' : 'SCAN_FAILED', err.message);
      throw err;
    }
    return normalizeReport(JSON.parse(await readFile(report, 'utf8')));
  }
}
