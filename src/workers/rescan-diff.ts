import { cap, MAX_DIFF_ITEMS } from '../analysis/vulnerabilities/build-diff.js';
import { diffScans, isEmptyDiff, type FindingRef, type ScanDiff } from '../analysis/vulnerabilities/scan-diff.js';
import { normalizeReport, type TrivyReport, type Vulnerability } from '../engines/trivy/trivy-report.js';
import type { ArtifactStore } from '../jobs/artifact-store.js';
import type { RescanOrigin } from '../jobs/job-types.js';
import type { TenantEvents } from '../webhooks/tenant-events.js';

/** Findings per list in a result or an event (the build diff's cap): a DB that flags thousands at once must not bloat either. */
export const MAX_DIFF_ENTRIES = MAX_DIFF_ITEMS;

export interface RescanDiff {
  /** The scan this one is compared with. */
  against: RescanOrigin['previous'];
  introduced: FindingRef[];
  resolved: FindingRef[];
  severity_changed: ScanDiff['severity_changed'];
  fix_changed: ScanDiff['fix_changed'];
  /** Lists cut at MAX_DIFF_ENTRIES; `counts` has the real sizes. */
  truncated: boolean;
  counts: { introduced: number; resolved: number; severity_changed: number; fix_changed: number };
}

/**
 * A rescan compared with the digest's previous scan: the previous job's Trivy reports
 * (every platform's, read back from its artifacts) against this scan's findings. A
 * finding is (id, package, installed version), over all platforms: the question is
 * "what does this digest carry now that it did not", not which platform carries it.
 * Undefined when the previous reports are gone (past the job retention): nothing to say.
 */
export async function rescanDiff(
  artifacts: Pick<ArtifactStore, 'read'>,
  origin: RescanOrigin,
  current: readonly Vulnerability[],
): Promise<RescanDiff | undefined> {
  const reports = origin.previous.reports.filter((name) => /^trivy-report(\.[a-z0-9_-]+)?\.json$/.test(name));
  if (!reports.length) return undefined;
  const previous: Vulnerability[] = [];
  for (const name of reports) {
    const bytes = await artifacts.read(origin.previous.job_id, name);
    if (!bytes) return undefined;
    previous.push(...normalizeReport(JSON.parse(bytes.toString('utf8')) as TrivyReport).vulnerabilities);
  }
  const diff = diffScans(previous, [...current]);
  const introduced = cap(diff.introduced, MAX_DIFF_ENTRIES);
  const resolved = cap(diff.resolved, MAX_DIFF_ENTRIES);
  const severityChanged = cap(diff.severity_changed, MAX_DIFF_ENTRIES);
  const fixChanged = cap(diff.fix_changed, MAX_DIFF_ENTRIES);
  return {
    against: origin.previous,
    introduced: introduced.items,
    resolved: resolved.items,
    severity_changed: severityChanged.items,
    fix_changed: fixChanged.items,
    truncated: introduced.cut || resolved.cut || severityChanged.cut || fixChanged.cut,
    counts: {
      introduced: diff.introduced.length,
      resolved: diff.resolved.length,
      severity_changed: diff.severity_changed.length,
      fix_changed: diff.fix_changed.length,
    },
  };
}

/**
 * `image.vulnerabilities.changed` to the tenant's endpoint when the rescan found, lost
 * or re-rated a finding (a fix that only became available is in the result, not an
 * event: the tenant's exposure did not change).
 */
export async function publishRescanDiff(
  events: TenantEvents,
  job: { id: string; tenant: string },
  image: { reference: string; digest: string | undefined },
  dbUpdatedAt: string,
  diff: RescanDiff,
): Promise<boolean> {
  if (isEmptyDiff(diff)) return false;
  await events.publish(job.tenant, 'image.vulnerabilities.changed', {
    digest: image.digest ?? null,
    image: image.reference,
    job_id: job.id,
    db: { previous: diff.against.db_updated_at, current: dbUpdatedAt },
    previous_scan: { job_id: diff.against.job_id, scanned_at: diff.against.scanned_at },
    introduced: diff.introduced,
    resolved: diff.resolved,
    severity_changed: diff.severity_changed,
    truncated: diff.truncated,
    counts: diff.counts,
  });
  return true;
}
