import { combineVerdicts, type PolicyVerdict } from '../engines/trivy/scan-policy.js';
import { scopeMatches } from '../exceptions/exception-scope.js';
import { asPolicyException, type VulnerabilityException } from '../exceptions/exception-store.js';
import { scanArtifactNames } from '../jobs/artifact-store.js';
import { evaluateNamedPolicy, scanAgeViolation, type NamedPolicyVerdict, type PolicyViolation } from '../policies/evaluate-named-policy.js';
import type { PolicySnapshot } from '../policies/policy.schema.js';
import type { ImageRecord, LatestScan } from './catalogue-record.js';
import type { VerdictFacts } from './verdict-facts.js';

/**
 * GET /v1/images/{digest}/verdict: a named policy over the catalogue's latest scan of a
 * digest, at `evaluated_at`. The fields follow a scan result's `policy` (violations,
 * allowed, expired, limits, rules_failed), at the top over every platform scanned and per
 * platform in `platforms`.
 *
 * An image the catalogue holds but never scanned, or whose reports are gone (past the
 * job retention), is answered, not refused: `passed: false` with the rule `no_scan` or
 * `scan_unavailable`. The question an admission controller asks is "may this digest
 * run?", and "we know nothing about it" is a no, given in the same shape as any other
 * no, so a caller has one code path and cannot mistake an error for a pass. The same
 * verdict gates sign and push (`policy` on those jobs). A 404 stays what it is elsewhere:
 * no such image in your tenant, or no such policy.
 */
export interface ImageVerdict {
  digest: string;
  policy: { name: string; version: number };
  passed: boolean;
  evaluated_at: string;
  /** The latest scan judged (null: none): its job, when it finished, the Trivy DB it used, its age at evaluated_at. */
  scan_job_id: string | null;
  scanned_at: string | null;
  db_updated_at: string | null;
  scan_age_seconds: number | null;
  /** Rules that failed on any platform (max_critical, deny_packages, max_scan_age, no_scan, scan_unavailable, …). */
  rules_failed: string[];
  /** Every violation, naming its platform (null for `no_scan`, which is about the image). */
  violations: VerdictViolation[];
  /** Allow-list entries and exceptions that set a finding aside; `exception_id` and `owner` name the exception. */
  allowed: PolicyVerdict['allowed'];
  expired: PolicyVerdict['expired'];
  limits: PolicyVerdict['limits'];
  /** One entry per platform the latest scan covered. */
  platforms: PlatformVerdict[];
  /** Platforms of the image the latest scan did not cover (a scan of one named platform): not judged. */
  unscanned_platforms: string[];
}

export type VerdictViolation = PolicyViolation & { platform: string | null };

export interface PlatformVerdict {
  platform: string;
  /** The platform manifest the report is of (null when its report is unavailable or does not say). */
  manifest_digest: string | null;
  /** Its Trivy report (GET /v1/jobs/{scan_job_id}/artifacts/{report}). */
  report: string;
  passed: boolean;
  rules_failed: string[];
  violations: PolicyViolation[];
  allowed: PolicyVerdict['allowed'];
  expired: PolicyVerdict['expired'];
  not_counted: NamedPolicyVerdict['not_counted'];
}

/** One platform of the latest scan, with its report's facts or why they could not be had. */
export interface PlatformReport {
  platform: string;
  report: string;
  facts?: VerdictFacts;
  unavailable?: string;
}

/**
 * The report of each platform a scan covered, named as the scan stage names them
 * (jobs/artifact-store.ts scanArtifactNames over the scan's platforms). A name the scan
 * did not record among its reports is unavailable. A record without platforms (written
 * by an older worker) has the plain report name for its one platform.
 */
export function scanReports(scan: LatestScan, imagePlatforms: string[]): { platform: string; report: string; listed: boolean }[] {
  const platforms = scan.platforms.length ? scan.platforms : [imagePlatforms[0] ?? 'unknown'];
  const names = scanArtifactNames(platforms);
  return platforms.map((platform, i) => ({ platform, report: names[i]!.report, listed: scan.reports.includes(names[i]!.report) }));
}

/** The repository paths (no registry) an image was seen under: what repository-scoped exceptions match. */
export function repositoryPaths(record: Pick<ImageRecord, 'repository' | 'repositories'> | undefined, extra: string[] = []): string[] {
  const all = [...(record ? [record.repository, ...record.repositories] : []), ...extra];
  return [...new Set(all.filter(Boolean).map((r) => r.slice(r.indexOf('/') + 1)))];
}

const ruleName = (v: { rule: string }) => v.rule.split('=')[0]!;

/**
 * Pure: the verdict of `policy` on a digest from the catalogue's record (undefined: not
 * catalogued, judged as never scanned), each platform's report facts and the tenant's
 * active exceptions. An exception applies when its scope covers the image: a repository
 * glob matching any repository the digest was seen in (the same bytes, whatever the
 * name), or the digest of the image or of the platform manifest.
 */
export function judgeImage(input: {
  digest: string;
  record: Pick<ImageRecord, 'repository' | 'repositories' | 'platforms' | 'latest_scan'> | undefined;
  policy: PolicySnapshot;
  reports: PlatformReport[];
  exceptions: readonly VulnerabilityException[];
  /** Repositories to count beside the record's (a sign or push job's own). */
  repositories?: string[];
  now: Date;
}): ImageVerdict {
  const { digest, record, policy, now } = input;
  const scan = record?.latest_scan ?? null;
  const scannedAt = scan ? Date.parse(scan.scanned_at) : NaN;
  const head = {
    digest,
    policy: { name: policy.name, version: policy.version },
    evaluated_at: now.toISOString(),
    scan_job_id: scan?.job_id ?? null,
    scanned_at: scan?.scanned_at ?? null,
    db_updated_at: scan?.db_updated_at ?? null,
    scan_age_seconds: Number.isFinite(scannedAt) ? Math.max(0, Math.floor((now.getTime() - scannedAt) / 1000)) : null,
  };
  const maxAge = policy.rules.max_scan_age;
  if (!scan) {
    const violations: VerdictViolation[] = [
      {
        id: 'no_scan',
        package: '',
        severity: null,
        rule: 'no_scan',
        detail: 'the catalogue has no scan of this image: scan it first',
        platform: null,
      },
    ];
    const stale = maxAge ? scanAgeViolation(maxAge, null, now) : null;
    if (stale) violations.push({ ...stale, platform: null });
    return {
      ...head,
      passed: false,
      rules_failed: [...new Set(violations.map(ruleName))],
      violations,
      allowed: [],
      expired: [],
      limits: {},
      platforms: [],
      unscanned_platforms: record?.platforms ?? [],
    };
  }
  const repositories = repositoryPaths(record, input.repositories);
  const platforms = input.reports.map((r): PlatformVerdict & { verdict: PolicyVerdict } => {
    if (!r.facts) {
      const violations: PolicyViolation[] = [
        {
          id: 'scan_unavailable',
          package: '',
          severity: null,
          rule: 'scan_unavailable',
          detail: `report ${r.report} of scan job ${scan.job_id}: ${r.unavailable ?? 'unavailable'}; scan the image again`,
        },
      ];
      const stale = maxAge ? scanAgeViolation(maxAge, scan.scanned_at, now) : null;
      if (stale) violations.push(stale);
      const verdict: PolicyVerdict = { passed: false, violations, allowed: [], expired: [], limits: {} };
      const notCounted = { unfixed: 0, in_grace: [] };
      return { ...platformEntry(r, null, verdict, notCounted), verdict };
    }
    const image = { digests: [digest, ...(r.facts.manifest_digest ? [r.facts.manifest_digest] : [])] };
    const covering = input.exceptions.filter((e) => repositories.some((repository) => scopeMatches(e.scope, { ...image, repository })));
    const judged = evaluateNamedPolicy(
      policy,
      { findings: r.facts.findings, packages: r.facts.packages, scannedAt: scan.scanned_at },
      now,
      covering.map(asPolicyException),
    );
    return { ...platformEntry(r, r.facts.manifest_digest, judged, judged.not_counted), verdict: judged };
  });
  const combined = combineVerdicts(platforms.map((p) => ({ platform: p.platform, policy: p.verdict })));
  // Limits and expired allow-list entries are the policy's: from a platform that was judged (an unavailable one has none).
  const judgedOne = platforms.find((p, i) => input.reports[i]!.facts)?.verdict;
  const scanned = new Set(platforms.map((p) => p.platform));
  return {
    ...head,
    passed: platforms.length > 0 && combined.passed,
    rules_failed: [...new Set(platforms.flatMap((p) => p.rules_failed))],
    violations: combined.violations,
    allowed: combined.allowed,
    expired: judgedOne?.expired ?? [],
    limits: judgedOne?.limits ?? {},
    platforms: platforms.map(({ verdict: _, ...p }) => p),
    unscanned_platforms: (record?.platforms ?? []).filter((p) => !scanned.has(p)),
  };
}

function platformEntry(
  r: PlatformReport,
  manifest: string | null,
  verdict: PolicyVerdict,
  notCounted: NamedPolicyVerdict['not_counted'],
): PlatformVerdict {
  return {
    platform: r.platform,
    manifest_digest: manifest,
    report: r.report,
    passed: verdict.passed,
    rules_failed: [...new Set(verdict.violations.map(ruleName))],
    violations: verdict.violations,
    allowed: verdict.allowed,
    expired: verdict.expired,
    not_counted: notCounted,
  };
}
