import { combineVerdicts, type CombinedVerdict, type PolicyVerdict } from '../engines/trivy/scan-policy.js';
import { summarize, type ScanSummary, type SecretFinding, type Vulnerability } from '../engines/trivy/trivy-report.js';

/** One platform's findings and the gate's verdict on them. */
export interface PlatformFindings {
  platform: string;
  vulnerabilities: Vulnerability[];
  secrets: SecretFinding[];
  policy: PolicyVerdict;
}

/** A finding of the combined result: where it was found. */
export type Located<T> = T & { platforms: string[] };

export type { CombinedVerdict };

export interface CombinedFindings {
  vulnerabilities: Located<Vulnerability>[];
  secrets: Located<SecretFinding>[];
  summary: ScanSummary;
  policy: CombinedVerdict;
}

/**
 * The top level of a scan's result over all its platforms (pure; scan-stage.ts scans).
 *
 * A vulnerability is one (id, package, installed version), a secret one (rule, file,
 * line), whichever platforms have it: the platforms of one image mostly install the same
 * packages, and a CVE in `apt 2.6.1` is one thing to fix, not one per architecture. So
 * the combined summary counts each once, and each finding lists its `platforms`. Within
 * one platform Trivy's entries are kept as they are (the same package at two paths is
 * two findings), so a single-platform scan reads exactly as its platform's own; the
 * other fields (target, layer_digest) are the first platform's — each platform's own
 * are in its report artifacts.
 *
 * The gate is each platform's own verdict, combined by combineVerdicts (scan-policy.ts).
 */
export function combineFindings(platforms: PlatformFindings[]): CombinedFindings {
  const vulnerabilities = mergeAcross(
    platforms.map((p) => ({ platform: p.platform, items: p.vulnerabilities })),
    (v) => JSON.stringify([v.id, v.package, v.installed_version]),
  );
  const secrets = mergeAcross(
    platforms.map((p) => ({ platform: p.platform, items: p.secrets })),
    (s) => JSON.stringify([s.rule, s.target, s.line]),
  );
  return { vulnerabilities, secrets, summary: summarize(vulnerabilities), policy: combineVerdicts(platforms) };
}

/**
 * Union of the platforms' lists as multisets: a platform's n-th item with a given key
 * joins the n-th combined entry with that key, or starts a new one.
 */
function mergeAcross<T extends object>(lists: { platform: string; items: T[] }[], key: (item: T) => string): Located<T>[] {
  const out: Located<T>[] = [];
  const byKey = new Map<string, Located<T>[]>();
  for (const { platform, items } of lists) {
    const seen = new Map<string, number>();
    for (const item of items) {
      const k = key(item);
      const n = seen.get(k) ?? 0;
      seen.set(k, n + 1);
      const entries = byKey.get(k) ?? [];
      const existing = entries[n];
      if (existing) {
        existing.platforms.push(platform);
        continue;
      }
      const entry = { ...item, platforms: [platform] };
      entries.push(entry);
      byKey.set(k, entries);
      out.push(entry);
    }
  }
  return out;
}
