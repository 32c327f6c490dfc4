import { diffPackages, diffScans, type FindingRef, type PackageDiff, type PackageRef, type Vulnerability } from './scan-diff.js';

/**
 * A build's `diff` against the previous build of its tag (pure parts: which platform is
 * compared, the capped package and finding lists). The worker side that finds the
 * previous build and reads its artifacts is workers/build-diff-stage.ts.
 *
 * One platform is compared: the first of this build's platforms that the previous build
 * also has, else each build's first (default) platform, named in `previous_platform`.
 * The platforms of one image install the same packages almost always, and one list is
 * what a reader of a build result wants; every platform's SBOM stays an artifact.
 */

/** Items kept per list: a giant diff (a base image switch) must not bloat the job record. */
export const MAX_DIFF_ITEMS = 500;

export interface DiffAgainst {
  /** This build's tags that pointed at that digest before. */
  tags: string[];
  digest: string;
  build_job: string;
  built_at: string;
}

interface Capped {
  /** Some list holds fewer items than `counts` says (at most MAX_DIFF_ITEMS each). */
  truncated: boolean;
}

export type PackagesDiff = PackageDiff & Capped & { counts: { added: number; removed: number; changed: number } };

export type FindingsDiff = {
  introduced: FindingRef[];
  resolved: FindingRef[];
  /** Same finding (id, package, version), another severity: the DBs of the two scans differ. */
  severity_changed: (FindingRef & { previous_severity: string })[];
  counts: { introduced: number; resolved: number; severity_changed: number };
  /** The vulnerability DB of each scan: findings also differ when the DB moved between them. */
  db_updated_at: { previous: string | null; current: string | null };
} & Capped;

export interface BuildDiff {
  against: DiffAgainst;
  /** This build's platform compared (null when neither build lists one). */
  platform: string | null;
  /** Set when the previous build did not have `platform`: its default platform was compared. */
  previous_platform?: string;
  packages: PackagesDiff | null;
  /** Why `packages` is null. */
  packages_unavailable?: string;
  findings: FindingsDiff | null;
  /** Why `findings` is null. */
  findings_unavailable?: string;
}

/** Which platform of each build to compare (see the file comment); undefined when either has none. */
export function comparedPlatforms(current: string[], previous: string[]): { current: string; previous: string } | undefined {
  const shared = current.find((p) => previous.includes(p));
  if (shared) return { current: shared, previous: shared };
  return current[0] && previous[0] ? { current: current[0], previous: previous[0] } : undefined;
}

export function cap<T>(list: T[], max: number): { items: T[]; cut: boolean } {
  return list.length > max ? { items: list.slice(0, max), cut: true } : { items: list, cut: false };
}

export function packagesDiff(previous: PackageRef[], current: PackageRef[], max = MAX_DIFF_ITEMS): PackagesDiff {
  const d = diffPackages(previous, current);
  const [added, removed, changed] = [cap(d.added, max), cap(d.removed, max), cap(d.changed, max)];
  return {
    added: added.items,
    removed: removed.items,
    changed: changed.items,
    counts: { added: d.added.length, removed: d.removed.length, changed: d.changed.length },
    truncated: added.cut || removed.cut || changed.cut,
  };
}

/** What a scan with these options reports, so a filter of this build's scan is applied to the previous findings too. */
export interface ScanFilter {
  severity?: string[];
  ignore_unfixed?: boolean;
}

export function likeScan<V extends Pick<Vulnerability, 'severity' | 'fixed_version'>>(findings: V[], filter: ScanFilter): V[] {
  return findings.filter(
    (v) => (!filter.severity?.length || filter.severity.includes(v.severity)) && (!filter.ignore_unfixed || v.fixed_version !== null),
  );
}

export function findingsDiff(
  previous: Vulnerability[],
  current: Vulnerability[],
  options: { filter: ScanFilter; db_updated_at: FindingsDiff['db_updated_at'] },
  max = MAX_DIFF_ITEMS,
): FindingsDiff {
  const d = diffScans(likeScan(previous, options.filter), current);
  const [introduced, resolved, severityChanged] = [cap(d.introduced, max), cap(d.resolved, max), cap(d.severity_changed, max)];
  return {
    introduced: introduced.items,
    resolved: resolved.items,
    severity_changed: severityChanged.items,
    counts: { introduced: d.introduced.length, resolved: d.resolved.length, severity_changed: d.severity_changed.length },
    db_updated_at: options.db_updated_at,
    truncated: introduced.cut || resolved.cut || severityChanged.cut,
  };
}
