import { normalizeReport, type TrivyReport } from '../engines/trivy/trivy-report.js';
import type { PolicyFinding } from '../policies/evaluate-named-policy.js';
import { reportFacts, withPublishedDates } from '../policies/report-facts.js';

/**
 * What the verdict of one platform needs of its Trivy report, and nothing more: the
 * findings (with their advisory's PublishedDate, for fix_grace_days), the package list
 * (for deny_packages) and the platform manifest Trivy scanned (for exceptions scoped to
 * that digest). A few percent of the report's size: titles, descriptions, CVSS vectors
 * and references are dropped, which is what lets the verdict cache hold many reports.
 */
export interface VerdictFacts {
  findings: PolicyFinding[];
  packages: { name: string; version: string }[];
  /** The platform manifest's digest (the report's ArtifactName is `repo@sha256:…`), null when it does not say. */
  manifest_digest: string | null;
}

const DIGEST_AT_END = /@(sha256:[a-f0-9]{64})$/;

/** Pure: a parsed Trivy JSON report (run with --list-all-pkgs) → the facts a named policy judges. */
export function verdictFacts(report: unknown): VerdictFacts {
  const r = (report && typeof report === 'object' ? report : {}) as TrivyReport & {
    ArtifactName?: unknown;
    Metadata?: { RepoDigests?: unknown };
  };
  const facts = reportFacts(r);
  const findings = withPublishedDates(normalizeReport(r).vulnerabilities, facts).map((f): PolicyFinding => ({
    id: f.id,
    package: f.package,
    installed_version: f.installed_version,
    fixed_version: f.fixed_version,
    severity: f.severity,
    status: f.status,
    // What a verdict does not show: left out of the cached facts.
    title: '',
    url: null,
    cvss_score: null,
    target: '',
    class: f.class,
    layer_digest: null,
    ...(f.vex ? { vex: f.vex } : {}),
    published_date: f.published_date ?? null,
  }));
  const named: unknown[] = [r.ArtifactName, ...(Array.isArray(r.Metadata?.RepoDigests) ? (r.Metadata.RepoDigests as unknown[]) : [])];
  const manifest = named.map((n) => (typeof n === 'string' ? DIGEST_AT_END.exec(n)?.[1] : undefined)).find(Boolean);
  return { findings, packages: facts.packages, manifest_digest: manifest ?? null };
}

/** Roughly how much memory the facts hold, in entries: what the verdict cache budgets by. */
export const factsWeight = (facts: VerdictFacts) => 1 + facts.findings.length + facts.packages.length;
