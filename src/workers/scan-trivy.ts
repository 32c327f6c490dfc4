import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ScannerUnavailableError, TrivyScanError } from '../engines/trivy/trivy-client.js';
import { asImageReport, normalizeReport, type TrivyReport } from '../engines/trivy/trivy-report.js';
import type { ScanArtifactNames } from '../jobs/artifact-store.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { ScanDeps, Scanner, ScanTarget } from './scan-stage.js';

/** One Trivy run of the scan stage: an image in its registry, or a rescan's stored SBOM; reports as the job's artifacts. */
/**
 * A rescan's SBOM of this platform manifest, copied into this job's artifacts under the
 * platform's SBOM name (so the catalogue's next rescan finds it here, long after the job
 * that made it expired). Undefined when there is none or it is gone: scan the image.
 */
export async function storedSbom(
  deps: ScanDeps,
  jobId: string,
  manifestDigest: string,
  names: ScanArtifactNames,
  target: ScanTarget,
): Promise<string | undefined> {
  const artifact = target.sbom_from?.artifacts[manifestDigest];
  if (!target.sbom_from || !artifact) return undefined;
  try {
    await deps.artifacts.copyOne({ job: target.sbom_from.job_id, name: artifact }, { job: jobId, name: names.sbom });
    return join(deps.artifacts.dir(jobId), names.sbom);
  } catch {
    return undefined;
  }
}

/** What Trivy reads: the image (pinned) in its registry, or its stored SBOM standing for that image. */
export type TrivySource = { image: string; sbom?: string };

export async function runTrivy(
  deps: ScanDeps,
  jobId: string,
  source: TrivySource,
  names: ScanArtifactNames,
  scanners: Scanner[],
  target: ScanTarget,
  signal: AbortSignal,
  vexFile?: string,
) {
  const dir = await deps.artifacts.prepare(jobId);
  const report = join(dir, names.report);
  const options = {
    scanners,
    severity: target.severity,
    ignoreUnfixed: target.ignore_unfixed,
    signal,
    ...(vexFile ? { vexFile } : {}),
  };
  try {
    if (source.sbom) {
      await deps.trivy.scanSbom(source.sbom, report, options);
      // Trivy names the SBOM file where an image scan names the image: put the image back
      // (the findings' targets, the SARIF), so a rescan's report reads like a scan's.
      const read = JSON.parse(await readFile(report, 'utf8')) as TrivyReport;
      await writeFile(report, JSON.stringify(asImageReport(read, source.sbom, source.image)));
    } else await deps.trivy.scanImage(source.image, report, options);
    await deps.trivy.convert(report, 'sarif', join(dir, names.sarif), signal);
    // The stored SBOM stays as it was (it came from the image); a report from an SBOM
    // would describe the SBOM, not the image.
    if (!source.sbom) await deps.trivy.convert(report, 'cyclonedx', join(dir, names.sbom), signal);
  } catch (err) {
    if (err instanceof ScannerUnavailableError) throw new JobFailure('SCANNER_UNAVAILABLE', err.message);
    if (err instanceof TrivyScanError) throw new JobFailure(err.notFound ? 'IMAGE_NOT_FOUND' : 'SCAN_FAILED', err.message);
    throw err;
  }
  return normalizeReport(JSON.parse(await readFile(report, 'utf8')) as TrivyReport);
}
