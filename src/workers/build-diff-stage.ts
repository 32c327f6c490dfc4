import {
  comparedPlatforms,
  findingsDiff,
  packagesDiff,
  type BuildDiff,
  type DiffAgainst,
  type ScanFilter,
} from '../analysis/vulnerabilities/build-diff.js';
import { sbomPackages, type Vulnerability } from '../analysis/vulnerabilities/scan-diff.js';
import type { ImageRecord, TagBuild } from '../catalogue/catalogue-record.js';
import type { CatalogueStore } from '../catalogue/catalogue-store.js';
import { normalizeReport, type TrivyReport } from '../engines/trivy/trivy-report.js';
import { scanArtifactNames, type ArtifactStore } from '../jobs/artifact-store.js';

export interface BuildDiffDeps {
  catalogue: Pick<CatalogueStore, 'get' | 'lastBuild'>;
  artifacts: Pick<ArtifactStore, 'read'>;
}

/** What this build made, as the pipeline knows it. */
export interface BuiltImage {
  tenant: string;
  /** The build job (whose artifacts hold this build's SBOMs). */
  job_id: string;
  digest: string;
  tags: string[];
  /** The job's SBOM artifact of each platform (the scan's, or the sbom stage's). */
  sboms: { platform: string; artifact: string }[];
  /** This build's scan; absent when the request did not scan. */
  scan?: {
    /** Each finding lists the platforms that have it (scan-combine.ts). */
    vulnerabilities: (Vulnerability & { platforms: string[] })[];
    platforms: string[];
    db_updated_at: string | null;
    /** The scan looked for vulnerabilities (`scanners` has `vuln`). */
    vulnerabilities_scanned: boolean;
    filter: ScanFilter;
  };
}

/** Previous digests compared at most (a build has up to 16 tags, each may have pointed elsewhere). */
export const MAX_DIFFS = 4;
/** An artifact larger than this is not parsed for a diff (an SBOM of a huge image). */
const MAX_ARTIFACT_BYTES = 64 * 1024 * 1024;

type Outcome<T> = { value: T } | { reason: string };

/**
 * One entry per previous digest of this build's tags (tags that pointed at the same
 * digest share one entry; a tag whose last build is this same digest has none). Only
 * the tenant's own builds are looked up (the catalogue is per tenant). Missing pieces —
 * a record past retention, artifacts past the job retention, a build that did not
 * scan — give `packages: null` or `findings: null` with the reason; it throws only
 * when Redis does (the caller leaves the diff out then).
 */
export async function diffAgainstPreviousBuilds(deps: BuildDiffDeps, image: BuiltImage): Promise<BuildDiff[]> {
  const previous = new Map<string, { build: TagBuild; tags: string[] }>();
  for (const tag of new Set(image.tags)) {
    const build = await deps.catalogue.lastBuild(image.tenant, tag);
    if (!build || build.digest === image.digest) continue;
    const entry = previous.get(build.digest);
    if (entry) entry.tags.push(tag);
    else previous.set(build.digest, { build, tags: [tag] });
  }
  const out: BuildDiff[] = [];
  for (const { build, tags } of [...previous.values()].slice(0, MAX_DIFFS)) {
    const against = { tags, digest: build.digest, build_job: build.build_job, built_at: build.at };
    const record = await deps.catalogue.get(image.tenant, build.digest);
    out.push(await diffOne(deps, image, against, record));
  }
  return out;
}

async function diffOne(deps: BuildDiffDeps, image: BuiltImage, against: DiffAgainst, record: ImageRecord | undefined): Promise<BuildDiff> {
  if (!record) {
    const gone = 'the previous build is no longer in the catalogue (past its retention)';
    return { against, platform: null, packages: null, packages_unavailable: gone, findings: null, findings_unavailable: gone };
  }
  const current = image.sboms.length ? image.sboms.map((s) => s.platform) : (image.scan?.platforms ?? []);
  const before = [
    ...new Set([...(record.sbom?.platforms.map((p) => p.platform) ?? []), ...(record.latest_scan?.platforms ?? []), ...record.platforms]),
  ];
  const pair = comparedPlatforms(current, before);
  const diff: BuildDiff = {
    against,
    platform: pair?.current ?? null,
    ...(pair && pair.previous !== pair.current ? { previous_platform: pair.previous } : {}),
    packages: null,
    findings: null,
  };
  const packages = await packagesOf(deps, image, record, pair);
  if ('value' in packages) diff.packages = packages.value;
  else diff.packages_unavailable = packages.reason;
  const findings = await findingsOf(deps, image, record, pair);
  if ('value' in findings) diff.findings = findings.value;
  else diff.findings_unavailable = findings.reason;
  return diff;
}

type Pair = { current: string; previous: string };

const NO_PLATFORM = 'the previous build lists no platform';

async function packagesOf(
  deps: BuildDiffDeps,
  image: BuiltImage,
  record: ImageRecord,
  pair: Pair | undefined,
): Promise<Outcome<BuildDiff['packages']>> {
  if (!image.sboms.length) return { reason: 'this build has no SBOM (sbom: false or no sbom in STEVEDORE_DEFAULT_PIPELINE, and no scan)' };
  if (!record.sbom) return { reason: 'the previous build has no SBOM' };
  if (!pair) return { reason: NO_PLATFORM };
  const mine = image.sboms.find((s) => s.platform === pair.current);
  if (!mine) return { reason: `this build has no SBOM of ${pair.current}` };
  const theirs = record.sbom.platforms.find((p) => p.platform === pair.previous);
  if (!theirs) return { reason: `the previous build has no SBOM of ${pair.previous}` };
  const before = await readJson(deps, { job: record.sbom.job_id, name: theirs.artifact }, 'the SBOM of the previous build');
  if ('reason' in before) return before;
  const after = await readJson(deps, { job: image.job_id, name: mine.artifact }, 'the SBOM of this build');
  if ('reason' in after) return after;
  return { value: packagesDiff(sbomPackages(before.value), sbomPackages(after.value)) };
}

async function findingsOf(
  deps: BuildDiffDeps,
  image: BuiltImage,
  record: ImageRecord,
  pair: Pair | undefined,
): Promise<Outcome<BuildDiff['findings']>> {
  const scan = image.scan;
  if (!scan) return { reason: 'this build did not scan (the request has no scan)' };
  if (!scan.vulnerabilities_scanned) return { reason: "this build's scan did not look for vulnerabilities (scanners)" };
  const last = record.latest_scan;
  if (!last) return { reason: 'the previous build was never scanned' };
  if (!pair) return { reason: NO_PLATFORM };
  if (!scan.platforms.includes(pair.current)) return { reason: `this build's scan did not cover ${pair.current}` };
  const index = last.platforms.indexOf(pair.previous);
  // The report names a scan gives its platforms (artifact-store.ts); a one-platform scan's single report otherwise.
  const named = index >= 0 ? scanArtifactNames(last.platforms)[index]!.report : undefined;
  const reports = last.reports.filter((r) => r.startsWith('trivy-report'));
  const report = named && reports.includes(named) ? named : reports.length === 1 && last.platforms.length <= 1 ? reports[0] : undefined;
  if (!report) return { reason: `the latest scan of the previous build (job ${last.job_id}) has no report of ${pair.previous}` };
  const read = await readJson(deps, { job: last.job_id, name: report }, 'the scan report of the previous build');
  if ('reason' in read) return read;
  let previous: Vulnerability[];
  try {
    previous = normalizeReport(read.value as TrivyReport).vulnerabilities;
  } catch (err) {
    return { reason: `the scan report of the previous build could not be read: ${(err as Error).message}` };
  }
  const current = scan.vulnerabilities.filter((v) => v.platforms.includes(pair.current));
  return {
    value: findingsDiff(previous, current, {
      filter: scan.filter,
      db_updated_at: { previous: last.db_updated_at, current: scan.db_updated_at },
    }),
  };
}

/** An artifact's JSON, or why there is none to compare (gone past the job retention, too large, not JSON). */
async function readJson(deps: BuildDiffDeps, at: { job: string; name: string }, what: string): Promise<Outcome<unknown>> {
  let bytes: Buffer | undefined;
  try {
    bytes = await deps.artifacts.read(at.job, at.name);
  } catch {
    bytes = undefined;
  }
  if (!bytes) return { reason: `${what} (job ${at.job}, ${at.name}) is gone (past the job retention)` };
  if (bytes.length > MAX_ARTIFACT_BYTES)
    return { reason: `${what} (${at.name}) is over ${MAX_ARTIFACT_BYTES / 1024 / 1024} MiB: not compared` };
  try {
    return { value: JSON.parse(bytes.toString('utf8')) as unknown };
  } catch {
    return { reason: `${what} (job ${at.job}, ${at.name}) is not JSON` };
  }
}

/** How long the diff may take before the build goes on without it (Redis away, a slow disk). */
const DIFF_TIMEOUT_MS = 30_000;

/**
 * The build pipeline's call: the diff, or undefined (no previous build of any tag) — and
 * never a failure of the build. A lookup that fails or takes longer than DIFF_TIMEOUT_MS
 * leaves the diff out of the result with a `warning` event saying why.
 */
export async function diffForBuildResult(
  deps: BuildDiffDeps,
  image: BuiltImage,
  ctx: { progress(message: string): Promise<void>; emit(type: 'warning', data: Record<string, unknown>): Promise<void> },
  timeoutMs = DIFF_TIMEOUT_MS,
): Promise<BuildDiff[] | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const work = diffAgainstPreviousBuilds(deps, image);
    work.catch(() => undefined); // one that ends after the timeout has been reported already
    const diff = await Promise.race([
      work,
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs))),
    ]);
    if (!diff.length) return undefined;
    await ctx.progress(
      `compared with the previous build of ${diff.map((d) => `${d.against.tags.join(', ')} (${d.against.digest})`).join('; ')}`,
    );
    return diff;
  } catch (err) {
    await ctx
      .emit('warning', {
        rule: 'BuildDiff',
        message: `no diff against the previous build: ${(err as Error)?.message ?? String(err)}`,
      })
      .catch(() => undefined);
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
