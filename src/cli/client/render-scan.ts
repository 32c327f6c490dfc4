import { PLAIN, table, type Paint } from './terminal.js';

export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'] as const;

interface Vuln {
  id: string;
  package: string;
  installed_version: string;
  fixed_version: string | null;
  severity: string;
  title?: string;
  /** Where a scan of several platforms found it. */
  platforms?: string[];
}
interface Summary {
  critical?: number;
  high?: number;
  medium?: number;
  low?: number;
  unknown?: number;
  fixable?: number;
}
interface Policy {
  passed: boolean;
  violations?: { id: string; package: string; severity: string; rule: string; platform?: string }[];
  allowed?: { id: string }[];
  expired?: { id: string }[];
}
export interface ScanResultView {
  vulnerabilities?: Vuln[];
  summary?: Summary;
  secrets?: { rule: string; severity: string; target: string; line: number | null }[];
  policy?: Policy;
  cached?: boolean;
  image_info?: { reference?: string; digest?: string; manifest_digest?: string };
  platforms?: { platform: string; manifest_digest?: string; summary?: Summary; policy?: Policy; cached?: boolean }[];
}

/** How many findings to list under the table; the rest are counted (all are in --json). */
const LISTED = 20;

const colourOf = (paint: Paint, severity: string) =>
  severity === 'CRITICAL' || severity === 'HIGH'
    ? paint.red
    : severity === 'MEDIUM'
      ? paint.yellow
      : severity === 'LOW'
        ? paint.blue
        : paint.dim;

/**
 * The severity table: one row per severity with its count and how many have a fix,
 * from the findings when present (the summary only has a fixable total).
 */
export function severityTable(result: ScanResultView, paint: Paint = PLAIN): string[] {
  const vulns = result.vulnerabilities ?? [];
  const rows = [['SEVERITY', 'COUNT', 'FIXABLE']];
  let total = 0;
  let fixable = 0;
  for (const severity of SEVERITIES) {
    const matching = vulns.filter((v) => v.severity === severity);
    const count = vulns.length ? matching.length : (result.summary?.[severity.toLowerCase() as keyof Summary] ?? 0);
    const fixed = matching.filter((v) => v.fixed_version).length;
    total += count;
    fixable += fixed;
    rows.push([count ? colourOf(paint, severity)(severity) : severity, String(count), vulns.length ? String(fixed) : '-']);
  }
  rows.push(['TOTAL', String(total), vulns.length ? String(fixable) : String(result.summary?.fixable ?? '-')]);
  return table(rows);
}

/** The findings worst first, then the secrets, then the gate's verdict. */
export function renderScan(result: ScanResultView, paint: Paint = PLAIN): string[] {
  const lines: string[] = [];
  const platforms = result.platforms ?? [];
  const several = platforms.length > 1;
  const ref = result.image_info?.reference;
  // Several platforms: the index's digest (each platform's manifest is in --json).
  const digest = several ? result.image_info?.digest : result.image_info?.manifest_digest;
  if (ref) lines.push(`${paint.bold(ref)}${digest ? ` (${digest})` : ''}${result.cached ? paint.dim(' [cached]') : ''}`, '');
  // Each platform's own counts and gate: the table below counts a finding once however
  // many platforms have it.
  if (several) lines.push(...platformTable(platforms, paint), '');
  lines.push(...severityTable(result, paint));
  const vulns = [...(result.vulnerabilities ?? [])].sort((a, b) => rank(a.severity) - rank(b.severity) || a.id.localeCompare(b.id));
  if (vulns.length) {
    lines.push(
      '',
      ...table([
        ['ID', 'SEVERITY', 'PACKAGE', 'INSTALLED', 'FIXED', ...(several ? ['PLATFORMS'] : []), 'TITLE'],
        ...vulns
          .slice(0, LISTED)
          .map((v) => [
            v.id,
            colourOf(paint, v.severity)(v.severity),
            v.package,
            v.installed_version,
            v.fixed_version ?? '-',
            ...(several ? [v.platforms?.length === platforms.length ? 'all' : (v.platforms ?? []).join(',')] : []),
            truncate(v.title ?? '', 60),
          ]),
      ]),
    );
    if (vulns.length > LISTED) lines.push(paint.dim(`… and ${vulns.length - LISTED} more (--json for all)`));
  }
  const secrets = result.secrets ?? [];
  if (secrets.length) {
    lines.push('', `${paint.red(`${secrets.length} secret${secrets.length === 1 ? '' : 's'} found`)} (values never shown):`);
    for (const s of secrets) lines.push(`  ${s.severity} ${s.rule} in ${s.target}${s.line ? `:${s.line}` : ''}`);
  }
  if (result.policy) lines.push('', ...renderPolicy(result.policy, paint, several ? platforms.map((p) => p.platform) : []));
  return lines;
}

/** One line per platform of a multi-platform scan: its counts and its gate. */
export function platformTable(platforms: NonNullable<ScanResultView['platforms']>, paint: Paint = PLAIN): string[] {
  const count = (s: Summary | undefined, k: keyof Summary) => String(s?.[k] ?? 0);
  return table([
    ['PLATFORM', 'CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN', 'GATE'],
    ...platforms.map((p) => [
      `${p.platform}${p.cached ? paint.dim(' [cached]') : ''}`,
      count(p.summary, 'critical'),
      count(p.summary, 'high'),
      count(p.summary, 'medium'),
      count(p.summary, 'low'),
      count(p.summary, 'unknown'),
      !p.policy ? '-' : p.policy.passed ? paint.green('PASSED') : paint.red(`FAILED (${p.policy.violations?.length ?? 0})`),
    ]),
  ]);
}

/**
 * The gate's verdict. `platforms`: those of a multi-platform scan, whose violations name
 * theirs; a finding that broke a rule on some of them only says which.
 */
export function renderPolicy(policy: Policy, paint: Paint = PLAIN, platforms: string[] = []): string[] {
  const violations = policy.violations ?? [];
  const extra = [
    policy.allowed?.length ? `${policy.allowed.length} allowed` : '',
    policy.expired?.length ? `${policy.expired.length} allow-list entries expired` : '',
  ]
    .filter(Boolean)
    .join(', ');
  if (policy.passed) return [`policy: ${paint.green('PASSED')}${extra ? ` (${extra})` : ''}`];
  const lines = [
    `policy: ${paint.red('FAILED')} (${violations.length} violation${violations.length === 1 ? '' : 's'}${extra ? `; ${extra}` : ''})`,
  ];
  // Grouped by the rule they broke: `max_high=0: CVE-… (pkg), CVE-… (pkg) [linux/arm64]`.
  const byRule = new Map<string, Map<string, Set<string>>>();
  for (const v of violations) {
    const findings = byRule.get(v.rule) ?? new Map<string, Set<string>>();
    const key = `${v.id} (${v.package})`;
    findings.set(key, (findings.get(key) ?? new Set()).add(v.platform ?? ''));
    byRule.set(v.rule, findings);
  }
  const where = (on: Set<string>) => (platforms.length > 1 && on.size < platforms.length ? ` [${[...on].join(', ')}]` : '');
  for (const [rule, findings] of byRule) lines.push(`  ${rule}: ${[...findings].map(([key, on]) => `${key}${where(on)}`).join(', ')}`);
  return lines;
}

const rank = (severity: string) => {
  const i = (SEVERITIES as readonly string[]).indexOf(severity);
  return i < 0 ? SEVERITIES.length : i;
};

const truncate = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
