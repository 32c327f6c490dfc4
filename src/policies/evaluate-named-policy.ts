import { evaluatePolicy, type PolicyException, type PolicyVerdict, type ScanPolicy } from '../engines/trivy/scan-policy.js';
import type { Vulnerability } from '../engines/trivy/trivy-report.js';
import { parseDuration, type PolicySnapshot } from './policy.schema.js';
import { parseRange, satisfies } from './version-range.js';

const DAY_MS = 86_400_000;

/**
 * A finding as a named policy sees it. `published_date` is the advisory's PublishedDate
 * from Trivy's report; `fix_available_since`, when a caller knows better (e.g. the
 * catalogue saw the fix appear), takes its place for the grace period.
 */
export type PolicyFinding = Vulnerability & { published_date?: string | null; fix_available_since?: string | null };

/** What a named policy is judged on: one image (one platform) and its latest scan. */
export interface PolicyFacts {
  findings: PolicyFinding[];
  /** Every package the scan listed (Trivy's --list-all-pkgs: the SBOM's components). */
  packages: { name: string; version: string }[];
  /** When the findings were made; absent when unknown (then max_scan_age fails). */
  scannedAt?: string | Date | null;
}

export type PolicyViolation = PolicyVerdict['violations'][number];

export interface NamedPolicyVerdict extends PolicyVerdict {
  named_policy: { name: string; version: number };
  /** The rules that failed, by name: max_high, deny_packages, max_scan_age, … */
  rules_failed: string[];
  /** Findings the policy left out: unfixed ones (only_fixable) and fixes still within fix_grace_days. */
  not_counted: {
    unfixed: number;
    in_grace: { id: string; package: string; fix_available_since: string; counts_from: string }[];
  };
  scanned_at: string | null;
}

/**
 * A named policy over one image's facts, at `now`. Pure: the scan stage calls it with a
 * fresh scan, and the verdict endpoint will call it with the catalogue's latest scan.
 * The severity limits and allow-list are today's gate (evaluatePolicy) over the findings
 * that count; the named rules add their violations beside them.
 */
export function evaluateNamedPolicy(
  policy: PolicySnapshot,
  facts: PolicyFacts,
  now = new Date(),
  /** The tenant's exceptions covering the image (src/exceptions): applied like allow-list entries. */
  exceptions: readonly PolicyException[] = [],
): NamedPolicyVerdict {
  const { only_fixable, fix_grace_days, deny_packages, max_scan_age, ...gate } = policy.rules;
  const graceMs = (fix_grace_days ?? 0) * DAY_MS;
  const notCounted: NamedPolicyVerdict['not_counted'] = { unfixed: 0, in_grace: [] };
  const counted = facts.findings.filter((f) => {
    if (!f.fixed_version) {
      if (only_fixable) notCounted.unfixed++;
      return !only_fixable;
    }
    if (!graceMs) return true;
    // No date for the fix: it counts at once (the strict reading).
    const since = f.fix_available_since ?? f.published_date;
    const t = since ? Date.parse(since) : NaN;
    if (!Number.isFinite(t) || t + graceMs <= now.getTime()) return true;
    notCounted.in_grace.push({
      id: f.id,
      package: f.package,
      fix_available_since: new Date(t).toISOString(),
      counts_from: new Date(t + graceMs).toISOString(),
    });
    return false;
  });
  const base = evaluatePolicy(counted, gate satisfies ScanPolicy, now, exceptions);
  const violations = [...base.violations, ...deniedPackages(deny_packages ?? [], facts.packages)];
  const scannedAt = facts.scannedAt ? new Date(facts.scannedAt) : undefined;
  if (max_scan_age) {
    const stale = scanAgeViolation(max_scan_age, scannedAt, now);
    if (stale) violations.push(stale);
  }
  return {
    ...base,
    passed: violations.length === 0,
    violations,
    named_policy: { name: policy.name, version: policy.version },
    rules_failed: [...new Set(violations.map((v) => v.rule.split('=')[0]!))],
    not_counted: notCounted,
    scanned_at: scannedAt && Number.isFinite(scannedAt.getTime()) ? scannedAt.toISOString() : null,
  };
}

/** One violation per denied name@version present (a package listed under two targets is one hit). */
export function deniedPackages(
  denied: NonNullable<PolicySnapshot['rules']['deny_packages']>,
  packages: PolicyFacts['packages'],
): PolicyViolation[] {
  const out = new Map<string, PolicyViolation>();
  if (!denied.length) return [];
  // By name first: an image lists thousands of packages, a policy denies a few.
  const byName = new Map<string, PolicyFacts['packages']>();
  const wanted = new Set(denied.map((d) => d.name));
  for (const p of packages) {
    if (!wanted.has(p.name)) continue;
    const list = byName.get(p.name);
    if (list) list.push(p);
    else byName.set(p.name, [p]);
  }
  for (const rule of denied) {
    const candidates = byName.get(rule.name);
    if (!candidates) continue;
    const range = rule.versions === undefined ? undefined : parseRange(rule.versions);
    for (const p of candidates) {
      if (range && !satisfies(p.version, range)) continue;
      const id = `${p.name}@${p.version}`;
      if (!out.has(id))
        out.set(id, {
          id,
          package: p.name,
          version: p.version,
          severity: null,
          rule: 'deny_packages',
          detail: `${p.name} ${rule.versions ?? '*'} is denied`,
        });
    }
  }
  return [...out.values()];
}

/**
 * `max_scan_age` on its own, for sign and push: null when the latest scan is recent
 * enough, else the violation. A missing or unreadable scan time fails.
 */
export function scanAgeViolation(
  maxScanAge: string,
  lastScanAt: Date | string | null | undefined,
  now = new Date(),
): PolicyViolation | null {
  const at = lastScanAt === null || lastScanAt === undefined ? NaN : new Date(lastScanAt).getTime();
  const rule = `max_scan_age=${maxScanAge}`;
  if (!Number.isFinite(at)) return { id: 'max_scan_age', package: '', severity: null, rule, detail: 'no scan of this image on record' };
  const age = now.getTime() - at;
  if (age <= parseDuration(maxScanAge)) return null;
  return {
    id: 'max_scan_age',
    package: '',
    severity: null,
    rule,
    detail: `the latest scan (${new Date(at).toISOString()}) is ${Math.floor(age / 3_600_000)} h old`,
  };
}
