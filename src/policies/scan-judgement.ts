import type { Vulnerability } from '../engines/trivy/trivy-report.js';
import type { PolicyException } from '../engines/trivy/scan-policy.js';
import { evaluateNamedPolicy, type NamedPolicyVerdict } from './evaluate-named-policy.js';
import type { PolicySnapshot } from './policy.schema.js';
import { readReportFacts, withPublishedDates } from './report-facts.js';

/**
 * A platform's scan judged by a named policy: the normalised findings, plus the packages
 * and advisory dates read back from the scan's Trivy report (the findings in a job's
 * result do not carry them).
 */
export async function judgeScan(
  snapshot: PolicySnapshot,
  scan: { vulnerabilities: Vulnerability[]; reportPath: string; scannedAt: string | undefined },
  now = new Date(),
  exceptions: readonly PolicyException[] = [],
): Promise<NamedPolicyVerdict> {
  const facts = await readReportFacts(scan.reportPath);
  return evaluateNamedPolicy(
    snapshot,
    { findings: withPublishedDates(scan.vulnerabilities, facts), packages: facts.packages, scannedAt: scan.scannedAt },
    now,
    exceptions,
  );
}

/** The combined (all platforms) verdict, with what names the policy and the rules that failed on any platform. */
export function withNamedPolicy<T extends { violations: { rule: string }[] }>(
  combined: T,
  snapshot: PolicySnapshot,
  platforms: NamedPolicyVerdict[],
): T & Pick<NamedPolicyVerdict, 'named_policy' | 'rules_failed'> {
  return {
    ...combined,
    named_policy: { name: snapshot.name, version: snapshot.version },
    rules_failed: [...new Set(platforms.flatMap((p) => p.rules_failed))],
  };
}
