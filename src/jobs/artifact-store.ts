import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Artifact names are ours (trivy-report.json, …): a strict pattern keeps paths inside the job's dir. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const JOB_ID = /^[0-9a-f-]{36}$/;

/** A scan's three reports; with several platforms each name carries one (`trivy-report.linux-arm64.json`). */
export interface ScanArtifactNames {
  report: string;
  sbom: string;
  sarif: string;
}

export const SCAN_ARTIFACTS: ScanArtifactNames = { report: 'trivy-report.json', sbom: 'sbom.cdx.json', sarif: 'report.sarif.json' };

const MEDIA_TYPES: [RegExp, string][] = [
  [/^trivy-report(\.[a-z0-9_-]+)?\.json$/, 'application/json'],
  [/^report\.sarif(\.[a-z0-9_-]+)?\.json$/, 'application/sarif+json'],
  [/^sbom\.cdx(\.[a-z0-9_-]+)?\.json$/, 'application/vnd.cyclonedx+json'],
];

export function artifactMediaType(name: string): string {
  return MEDIA_TYPES.find(([pattern]) => pattern.test(name))?.[1] ?? 'application/octet-stream';
}

/**
 * The report names of each platform a scan covers: one platform keeps the plain names
 * (what clients and earlier results use); several get the platform in every name, as
 * `os-arch[-variant]` (the index's platform strings are registry data: anything else is
 * dropped, and a clash or an over-long one falls back to its position).
 */
export function scanArtifactNames(platforms: string[]): ScanArtifactNames[] {
  if (platforms.length === 1) return [SCAN_ARTIFACTS];
  const seen = new Set<string>();
  return platforms.map((platform, i) => {
    let slug = platform
      .toLowerCase()
      .replace(/[^a-z0-9_]+/g, '-')
      .replace(/^-+|-+$/g, '');
    if (!slug || slug.length > 40 || seen.has(slug)) slug = `platform-${i + 1}`;
    seen.add(slug);
    return { report: `trivy-report.${slug}.json`, sbom: `sbom.cdx.${slug}.json`, sarif: `report.sarif.${slug}.json` };
  });
}

export interface ArtifactInfo {
  name: string;
  media_type: string;
  size_bytes: number;
}

/**
 * Files a job produced (reports, SBOMs) under `<state dir>/artifacts/<job id>/`:
 * reports can be megabytes, which belong on disk, not in Redis.
 */
export class ArtifactStore {
  constructor(private readonly root: string) {}

  dir(jobId: string): string {
    if (!JOB_ID.test(jobId)) throw new Error(`invalid job id ${jobId}`);
    return join(this.root, jobId);
  }

  async prepare(jobId: string): Promise<string> {
    const dir = this.dir(jobId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return dir;
  }

  async list(jobId: string): Promise<ArtifactInfo[]> {
    const dir = this.dir(jobId);
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: ArtifactInfo[] = [];
    for (const name of names.filter((n) => NAME.test(n)).sort()) {
      out.push({
        name,
        media_type: artifactMediaType(name),
        size_bytes: (await stat(join(dir, name))).size,
      });
    }
    return out;
  }

  /** The artifact's bytes, or undefined when the job has no artifact of that name. */
  async read(jobId: string, name: string): Promise<Buffer | undefined> {
    if (!NAME.test(name)) return undefined;
    return readFile(join(this.dir(jobId), name)).catch(() => undefined);
  }

  /**
   * One artifact of a job copied to another job (a cached scan answers with the reports
   * of the scan that ran, under the names this job gives them). Rejects when the source
   * is gone; copying a file onto itself (a retried job hitting its own cache entry) is a
   * no-op, as copyFile would truncate it.
   */
  async copyOne(from: { job: string; name: string }, to: { job: string; name: string }): Promise<void> {
    if (!NAME.test(from.name) || !NAME.test(to.name)) throw new Error(`invalid artifact name ${from.name} or ${to.name}`);
    const source = join(this.dir(from.job), from.name);
    const target = join(await this.prepare(to.job), to.name);
    if (source === target) {
      await stat(source);
      return;
    }
    await copyFile(source, target);
  }

  async remove(jobId: string): Promise<void> {
    await rm(this.dir(jobId), { recursive: true, force: true });
  }

  /** Removes the artifacts of jobs older than the retention (their records are gone too). */
  async gc(retentionSeconds: number, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const id of await readdir(this.root).catch(() => [] as string[])) {
      if (!JOB_ID.test(id)) continue;
      const info = await stat(join(this.root, id)).catch(() => undefined);
      if (info && now - info.mtimeMs > retentionSeconds * 1000) {
        await this.remove(id);
        removed++;
      }
    }
    return removed;
  }
}
