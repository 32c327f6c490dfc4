import type { Severity, Vulnerability } from './trivy-report.js';

/** A policy gate over scan findings: counts allowed per severity, plus an allow-list. */
export interface ScanPolicy {
  max_critical?: number;
  max_high?: number;
  max_medium?: number;
  max_low?: number;
  max_unknown?: number;
  ignore_unfixed?: boolean;
  allow?: { id: string; reason: string; expires?: string }[];
}

export interface PolicyVerdict {
  passed: boolean;
  /**
   * Every finding that broke a limit, with the limit it broke. A named policy's rules
   * that are not about a finding (src/policies) add entries with severity null, the
   * package `version` for a denied package and a `detail`.
   */
  violations: { id: string; package: string; severity: Severity | null; rule: string; version?: string; detail?: string }[];
  /**
   * Allow-list entries that applied, one per vulnerability id. When a tenant's exception
   * (POST /v1/exceptions) allowed it, `exception_id` and `owner` name that exception.
   */
  allowed: { id: string; reason: string; expires: string | null; exception_id?: string; owner?: string }[];
  /** Allow-list entries past their date: listed, not applied. */
  expired: { id: string; reason: string; expires: string }[];
  limits: Record<string, number | null>;
}

/** A tenant exception that covers the scanned image (its scope matched already). */
export interface PolicyException {
  exception_id: string;
  vulnerability_id: string;
  reason: string;
  owner: string;
  expires: string;
}

/** The seed's success criteria: no critical, fewer than 5 high. */
export const DEFAULT_POLICY: ScanPolicy = { max_critical: 0, max_high: 4 };

const RULES: [Severity, keyof ScanPolicy][] = [
  ['CRITICAL', 'max_critical'],
  ['HIGH', 'max_high'],
  ['MEDIUM', 'max_medium'],
  ['LOW', 'max_low'],
  ['UNKNOWN', 'max_unknown'],
];

/**
 * Evaluated on every request, cached scan or not, against `now` (for expiries).
 * `exceptions` apply like allow-list entries; the request's own allow-list entry wins
 * when both name a finding, and an exception past `now` does not apply.
 */
export function evaluatePolicy(
  findings: Vulnerability[],
  policy: ScanPolicy = DEFAULT_POLICY,
  now = new Date(),
  exceptions: readonly PolicyException[] = [],
): PolicyVerdict {
  const active = new Map<string, PolicyVerdict['allowed'][number]>();
  for (const e of exceptions)
    if (Date.parse(e.expires) > now.getTime() && !active.has(e.vulnerability_id))
      active.set(e.vulnerability_id, {
        id: e.vulnerability_id,
        reason: e.reason,
        expires: e.expires,
        exception_id: e.exception_id,
        owner: e.owner,
      });
  const expired: PolicyVerdict['expired'] = [];
  for (const entry of policy.allow ?? []) {
    if (entry.expires && Date.parse(entry.expires) <= now.getTime())
      expired.push({ id: entry.id, reason: entry.reason, expires: entry.expires });
    else active.set(entry.id, { id: entry.id, reason: entry.reason, expires: entry.expires ?? null });
  }
  const allowedIds = new Set<string>();
  const counted = findings.filter((f) => {
    if (policy.ignore_unfixed && !f.fixed_version) return false;
    if (active.has(f.id)) {
      allowedIds.add(f.id);
      return false;
    }
    return true;
  });
  const violations: PolicyVerdict['violations'] = [];
  const limits: Record<string, number | null> = {};
  for (const [severity, rule] of RULES) {
    const max = policy[rule] as number | undefined;
    limits[rule] = max ?? null;
    if (max === undefined) continue;
    const matching = counted.filter((f) => f.severity === severity);
    if (matching.length > max)
      for (const f of matching) violations.push({ id: f.id, package: f.package, severity, rule: `${rule}=${max}` });
  }
  return { passed: violations.length === 0, violations, allowed: [...allowedIds].map((id) => active.get(id)!), expired, limits };
}

/** The gate over every platform: a violation names the platform it was found on. */
export type CombinedVerdict = Omit<PolicyVerdict, 'violations'> & {
  violations: (PolicyVerdict['violations'][number] & { platform: string })[];
};

/**
 * Each platform's own verdict, as one: it passes only when every platform passed, and its
 * violations name their platform (the same CVE failing on two platforms is two
 * violations). Allow-list entries that applied anywhere are merged by id. Shared by a
 * scan's result (workers/scan-combine.ts) and the catalogue's verdict (catalogue/image-verdict.ts).
 */
export function combineVerdicts(platforms: { platform: string; policy: PolicyVerdict }[]): CombinedVerdict {
  const byId = <E extends { id: string }>(entries: E[]) => [...new Map(entries.map((e) => [e.id, e])).values()];
  return {
    passed: platforms.every((p) => p.policy.passed),
    violations: platforms.flatMap((p) => p.policy.violations.map((v) => ({ ...v, platform: p.platform }))),
    allowed: byId(platforms.flatMap((p) => p.policy.allowed)),
    // Every platform is held to the same policy: the same expired entries and limits.
    expired: platforms[0]?.policy.expired ?? [],
    limits: platforms[0]?.policy.limits ?? {},
  };
}
