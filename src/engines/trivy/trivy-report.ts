/** Trivy's JSON report, reduced to what stevedore promises its callers. */
export const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface Vulnerability {
  id: string;
  package: string;
  installed_version: string;
  fixed_version: string | null;
  severity: Severity;
  status: string;
  title: string;
  url: string | null;
  cvss_score: number | null;
  target: string;
  class: string;
  layer_digest: string | null;
  /** Set when a VEX statement (`--vex`) covered the finding: `status` is then the VEX status. */
  vex?: { status: string; statement: string; source: string };
}

/** A secret Trivy found: where and what kind, never the value (Match and Code are dropped). */
export interface SecretFinding {
  rule: string;
  category: string;
  severity: Severity;
  target: string;
  line: number | null;
  layer_digest: string | null;
}

export interface ScanSummary {
  critical: number;
  high: number;
  medium: number;
  low: number;
  unknown: number;
  fixable: number;
}

interface TrivyVulnerability {
  VulnerabilityID: string;
  PkgName: string;
  InstalledVersion?: string;
  FixedVersion?: string;
  Status?: string;
  Severity?: string;
  Title?: string;
  PrimaryURL?: string;
  CVSS?: Record<string, { V3Score?: number; V2Score?: number }>;
  Layer?: { Digest?: string; DiffID?: string };
}

export interface TrivyReport {
  /** What was scanned: the image reference, or the SBOM file for `trivy sbom`. */
  ArtifactName?: string;
  Results?: {
    Target: string;
    Class?: string;
    Vulnerabilities?: TrivyVulnerability[];
    /** Findings a VEX statement set aside (`--vex`), with its status. */
    ExperimentalModifiedFindings?: { Type?: string; Status?: string; Statement?: string; Source?: string; Finding?: TrivyVulnerability }[];
    Secrets?: { RuleID: string; Category?: string; Severity?: string; StartLine?: number; Layer?: { Digest?: string } }[];
  }[];
}

const severityOf = (s: string | undefined): Severity => ((SEVERITIES as readonly string[]).includes(s ?? '') ? (s as Severity) : 'UNKNOWN');

/** Highest CVSS v3 score any source gives (NVD first when present), else v2. */
function cvssScore(cvss: Record<string, { V3Score?: number; V2Score?: number }> | undefined): number | null {
  if (!cvss) return null;
  const sources = cvss.nvd ? [cvss.nvd, ...Object.values(cvss)] : Object.values(cvss);
  for (const s of sources) if (typeof s.V3Score === 'number') return s.V3Score;
  for (const s of sources) if (typeof s.V2Score === 'number') return s.V2Score;
  return null;
}

export function normalizeReport(report: TrivyReport): { vulnerabilities: Vulnerability[]; secrets: SecretFinding[]; summary: ScanSummary } {
  const vulnerabilities: Vulnerability[] = [];
  const secrets: SecretFinding[] = [];
  for (const result of report.Results ?? []) {
    // A finding VEX set aside is still a finding of the image: listed, carrying the VEX
    // status, so the gate can say which exception allowed it. Its source is a file name
    // only (Trivy gives the path, which is the server's business).
    const modified = (result.ExperimentalModifiedFindings ?? [])
      .filter((m) => m.Type === 'vulnerability' && m.Finding?.VulnerabilityID)
      .map((m) => ({
        v: m.Finding!,
        vex: { status: m.Status ?? 'unknown', statement: m.Statement ?? '', source: (m.Source ?? '').split('/').pop()! },
      }));
    const found = (result.Vulnerabilities ?? []).map((v) => ({ v, vex: undefined }));
    for (const { v, vex } of [...found, ...modified]) {
      vulnerabilities.push({
        id: v.VulnerabilityID,
        package: v.PkgName,
        installed_version: v.InstalledVersion ?? '',
        fixed_version: v.FixedVersion || null,
        severity: severityOf(v.Severity),
        status: vex?.status ?? v.Status ?? (v.FixedVersion ? 'fixed' : 'affected'),
        title: v.Title ?? '',
        url: v.PrimaryURL ?? null,
        cvss_score: cvssScore(v.CVSS),
        target: result.Target,
        class: result.Class ?? '',
        layer_digest: v.Layer?.Digest ?? null,
        ...(vex ? { vex } : {}),
      });
    }
    for (const s of result.Secrets ?? []) {
      secrets.push({
        rule: s.RuleID,
        category: s.Category ?? '',
        severity: severityOf(s.Severity),
        target: result.Target,
        line: s.StartLine ?? null,
        layer_digest: s.Layer?.Digest ?? null,
      });
    }
  }
  return { vulnerabilities, secrets, summary: summarize(vulnerabilities) };
}

/**
 * A report of `trivy sbom <sbomFile>` (a rescan from the stored SBOM) made to read as the
 * image scan it stands for. Trivy names the SBOM file where an image scan names the image
 * — ArtifactName and the OS result's Target ("<file> (debian 12.15)") — which would put a
 * server path into the findings' `target`; with `reference` (the pinned image that was
 * scanned) in its place, the normalised findings equal an image scan's on the same DB,
 * every field (test/integration/sbom-rescan-equivalence.test.ts). Pure: a new object.
 */
export function asImageReport<T extends TrivyReport>(report: T, sbomFile: string, reference: string): T {
  const rename = (name: string | undefined) =>
    name === sbomFile ? reference : name?.startsWith(`${sbomFile} `) ? reference + name.slice(sbomFile.length) : name;
  return {
    ...report,
    ...(report.ArtifactName !== undefined ? { ArtifactName: rename(report.ArtifactName) } : {}),
    ...(report.Results ? { Results: report.Results.map((r) => ({ ...r, Target: rename(r.Target)! })) } : {}),
  };
}

export function summarize(vulnerabilities: Vulnerability[]): ScanSummary {
  const summary: ScanSummary = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, fixable: 0 };
  for (const v of vulnerabilities) {
    summary[v.severity.toLowerCase() as keyof Omit<ScanSummary, 'fixable'>]++;
    if (v.fixed_version) summary.fixable++;
  }
  return summary;
}
