/**
 * The image catalogue's model: what GET /v1/images answers (ImageRecord) and what a
 * finished job contributes to it (CatalogueUpdate, made by from-job.ts, applied by
 * catalogue-store.ts). Key *names* only: no credential, password or key material is
 * ever part of either.
 */

/** Counts per severity of the latest scan (the scan's own summary). */
export interface ScanCounts {
  critical: number;
  high: number;
  medium: number;
  low: number;
  unknown: number;
  fixable: number;
}

export interface LatestScan {
  job_id: string;
  scanned_at: string;
  /** The Trivy DB the findings come from (null when the scanner did not say). */
  db_updated_at: string | null;
  summary: ScanCounts;
  /** The scan's gate: passed or failed, and how many findings broke a limit. */
  policy: { passed: boolean; violations: number };
  /** Platforms scanned (an index: each platform, or the one asked for). */
  platforms: string[];
  /** Report artifacts of that job (GET /v1/jobs/{job_id}/artifacts/{name}), kept as long as the job. */
  reports: string[];
}

export interface SbomRef {
  job_id: string;
  /** The first platform's SBOM artifact; `platforms` lists each. */
  artifact: string;
  platforms: { platform: string; digest: string; artifact: string }[];
  /** The image carries a signed SBOM attestation (else the SBOM is only stored as an artifact). */
  attached: boolean;
}

export interface Sighting {
  /** registry/repository:tag */
  reference: string;
  repository: string;
  tag: string;
  first_seen: string;
  last_seen: string;
}

export interface ImageRecord {
  /** The image's top digest: the index of a multi-platform image. */
  digest: string;
  /** registry/repository where stevedore first saw it; `repositories` lists every one. */
  repository: string;
  repositories: string[];
  /** Tags seen pointing at this digest, most recently seen first. */
  references: Sighting[];
  platforms: string[];
  /** Config + layers of the platform the recording job inspected (an index's default platform). */
  size_bytes: number | null;
  created: string | null;
  /** The latest build job that produced this digest. */
  build_job: string | null;
  first_seen: string;
  last_seen: string;
  latest_scan: LatestScan | null;
  signatures: { key: string; job_id: string; at: string }[];
  attestations: { type: string; job_id: string; at: string }[];
  sbom: SbomRef | null;
}

/**
 * The digest a tenant's build last pushed to a tag (registry/repository:tag): what a new
 * build of the tag is compared with (its result's `diff`). Builds only: a copy or a scan
 * naming the tag is not a build of it.
 */
export interface TagBuild {
  reference: string;
  digest: string;
  build_job: string;
  /** The build job's finish time. */
  at: string;
}

/** What one job tells about one digest; several updates of one digest merge into its record. */
export interface CatalogueUpdate {
  tenant: string;
  digest: string;
  /** When it was seen: the job's finish time (ISO 8601, UTC). */
  at: string;
  /** registry/repository of this sighting (the record's `repository` when it is the first). */
  repository: string;
  /** More repositories it was seen in (copies). */
  repositories: string[];
  /** Tagged references seen (registry/repository:tag). */
  references: string[];
  /** Facts of the digest itself: set once, never changed (content-addressed). */
  image?: { platforms?: string[]; size_bytes?: number; created?: string };
  build_job?: string;
  scan?: LatestScan;
  signatures?: { key: string; job_id: string; at: string }[];
  attestations?: { type: string; job_id: string; at: string }[];
  sbom?: SbomRef;
}

export const SEVERITY_LEVELS = ['critical', 'high', 'medium', 'low'] as const;
export type SeverityLevel = (typeof SEVERITY_LEVELS)[number];

/** Does the scan have a finding at or above `level`? */
export function hasSeverityAtLeast(summary: ScanCounts, level: SeverityLevel): boolean {
  const at = SEVERITY_LEVELS.indexOf(level);
  return SEVERITY_LEVELS.slice(0, at + 1).some((s) => (summary[s] ?? 0) > 0);
}
