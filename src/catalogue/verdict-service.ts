import { join } from 'node:path';
import { AppError } from '../errors/app-error.js';
import type { ExceptionStore } from '../exceptions/exception-store.js';
import type { ArtifactStore } from '../jobs/artifact-store.js';
import type { PolicySnapshot } from '../policies/policy.schema.js';
import type { PolicyStore } from '../policies/policy-store.js';
import type { ImageRecord } from './catalogue-record.js';
import type { CatalogueStore } from './catalogue-store.js';
import { judgeImage, scanReports, type ImageVerdict, type PlatformReport } from './image-verdict.js';
import { ReportUnavailableError, type ReportReader } from './report-reader.js';

export interface VerdictDeps {
  catalogue: Pick<CatalogueStore, 'get'>;
  policies: Pick<PolicyStore, 'get'>;
  exceptions: Pick<ExceptionStore, 'active'>;
  artifacts: Pick<ArtifactStore, 'dir'>;
  reports: Pick<ReportReader, 'read'>;
  clock?: () => Date;
}

/** Another tenant's digest answers exactly like a missing one. */
export const imageNotFound = (digest: string) =>
  new AppError('not_found', 'IMAGE_NOT_FOUND', `no image with digest ${digest} in the catalogue`);

/**
 * The verdict of a named policy on a catalogued digest (image-verdict.ts says what it
 * answers). Redis reads (the record, the policy, the tenant's exceptions) go out at once;
 * each platform's report facts come from the ReportReader's cache once read, so a verdict
 * asked again costs those reads and the evaluation.
 */
export class VerdictService {
  private readonly clock: () => Date;

  constructor(private readonly deps: VerdictDeps) {
    this.clock = deps.clock ?? (() => new Date());
  }

  /** GET /v1/images/{digest}/verdict?policy=name: 404 IMAGE_NOT_FOUND or POLICY_NOT_FOUND. */
  async byName(tenant: string, digest: string, name: string): Promise<ImageVerdict> {
    const now = this.clock();
    const [record, stored, exceptions] = await Promise.all([
      this.deps.catalogue.get(tenant, digest),
      this.deps.policies.get(tenant, name),
      this.deps.exceptions.active(tenant, now),
    ]);
    if (!record) throw imageNotFound(digest);
    if (!stored)
      throw new AppError('not_found', 'POLICY_NOT_FOUND', `no policy named ${name} (PUT /v1/policies/${name} first)`, { policy: name });
    const policy = { name: stored.name, version: stored.version, updated_at: stored.updated_at, rules: stored.rules };
    return this.verdict(digest, record, policy, exceptions, [], now);
  }

  /**
   * For a sign or push job: the snapshot admission recorded, on the digest it resolved.
   * A digest the tenant's catalogue lacks is judged as never scanned (`no_scan`).
   * `repository`: the job's own (registry/repository), counted beside the record's.
   */
  async judge(tenant: string, digest: string, policy: PolicySnapshot, repository?: string): Promise<ImageVerdict> {
    const now = this.clock();
    const [record, exceptions] = await Promise.all([this.deps.catalogue.get(tenant, digest), this.deps.exceptions.active(tenant, now)]);
    return this.verdict(digest, record, policy, exceptions, repository ? [repository] : [], now);
  }

  private async verdict(
    digest: string,
    record: ImageRecord | undefined,
    policy: PolicySnapshot,
    exceptions: Awaited<ReturnType<ExceptionStore['active']>>,
    repositories: string[],
    now: Date,
  ): Promise<ImageVerdict> {
    const scan = record?.latest_scan;
    const reports: PlatformReport[] =
      record && scan ? await Promise.all(scanReports(scan, record.platforms).map((r) => this.read(scan.job_id, r))) : [];
    return judgeImage({ digest, record, policy, reports, exceptions, repositories, now });
  }

  private async read(jobId: string, r: { platform: string; report: string; listed: boolean }): Promise<PlatformReport> {
    const { platform, report } = r;
    if (!r.listed) return { platform, report, unavailable: 'the scan recorded no such report' };
    let dir: string;
    try {
      dir = this.deps.artifacts.dir(jobId);
    } catch {
      return { platform, report, unavailable: 'no such job' }; // a damaged record: as unavailable as a removed file
    }
    try {
      return { platform, report, facts: await this.deps.reports.read(join(dir, report)) };
    } catch (err) {
      if (err instanceof ReportUnavailableError) return { platform, report, unavailable: err.message };
      throw err;
    }
  }
}
