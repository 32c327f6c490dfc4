import { readFile } from 'node:fs/promises';
import type { Vulnerability } from '../engines/trivy/trivy-report.js';
import type { PolicyFinding } from './evaluate-named-policy.js';

/** The parts of Trivy's JSON report (run with --list-all-pkgs) a named policy needs beyond the normalised findings. */
interface ReportForPolicy {
  Results?: {
    Packages?: { Name?: string; Version?: string; Release?: string; Epoch?: number }[];
    Vulnerabilities?: { VulnerabilityID?: string; PkgName?: string; InstalledVersion?: string; PublishedDate?: string }[];
  }[];
}

export interface ReportFacts {
  packages: { name: string; version: string }[];
  /** PublishedDate per (id, package, installed version). */
  published: Map<string, string>;
}

const findingKey = (id: string, pkg: string, installed: string) => JSON.stringify([id, pkg, installed]);

/** Packages in Trivy's own spelling of a version (its FormatVersion: `epoch:version-release`), as findings show them. */
export function reportFacts(report: ReportForPolicy): ReportFacts {
  const packages = new Map<string, { name: string; version: string }>();
  const published = new Map<string, string>();
  for (const result of report.Results ?? []) {
    for (const p of result.Packages ?? []) {
      if (!p.Name) continue;
      let version = p.Version ?? '';
      if (p.Release) version = `${version}-${p.Release}`;
      if (p.Epoch) version = `${p.Epoch}:${version}`;
      packages.set(JSON.stringify([p.Name, version]), { name: p.Name, version });
    }
    for (const v of result.Vulnerabilities ?? [])
      if (v.VulnerabilityID && v.PkgName && v.PublishedDate)
        published.set(findingKey(v.VulnerabilityID, v.PkgName, v.InstalledVersion ?? ''), v.PublishedDate);
  }
  return { packages: [...packages.values()], published };
}

/** The report file of a scan, read for its packages and dates. */
export async function readReportFacts(path: string): Promise<ReportFacts> {
  return reportFacts(JSON.parse(await readFile(path, 'utf8')) as ReportForPolicy);
}

/** Findings with their advisory's PublishedDate, where the report gives one. */
export function withPublishedDates(findings: Vulnerability[], facts: ReportFacts): PolicyFinding[] {
  return findings.map((f) => ({ ...f, published_date: facts.published.get(findingKey(f.id, f.package, f.installed_version)) ?? null }));
}
