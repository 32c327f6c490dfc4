import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TrivyClient } from '../engines/trivy/trivy-client.js';

/** How many vulnerabilities an image carries, or null when there is no DB to say (or the scan failed). */
export type VulnerabilityCounter = (ref: string, platform: string | undefined, signal: AbortSignal) => Promise<number | null>;

/** Counts with Trivy when it has a DB: a base image choice then weighs size and exposure together. */
export function trivyVulnerabilityCounter(trivy: TrivyClient): VulnerabilityCounter {
  return async (ref, platform, signal) => {
    if (!(await trivy.dbUpdatedAt().catch(() => undefined))) return null;
    const dir = await mkdtemp(join(tmpdir(), 'stevedore-optimize-scan-'));
    try {
      const report = join(dir, 'report.json');
      await trivy.scanImage(ref, report, { scanners: ['vuln'], ...(platform ? { platform } : {}), signal, timeoutMs: 300_000 });
      const json = JSON.parse(await readFile(report, 'utf8')) as { Results?: { Vulnerabilities?: unknown[] | null }[] | null };
      return (json.Results ?? []).reduce((n, r) => n + (r.Vulnerabilities?.length ?? 0), 0);
    } catch (err) {
      if (signal.aborted) throw err;
      return null;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
}
