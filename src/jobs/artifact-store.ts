import { copyFile, mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Artifact names are ours (trivy-report.json, …): a strict pattern keeps paths inside the job's dir. */
const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const JOB_ID = /^[0-9a-f-]{36}$/;

export const ARTIFACT_MEDIA_TYPES: Record<string, string> = {
  'trivy-report.json': 'application/json',
  'report.sarif.json': 'application/sarif+json',
  'sbom.cdx.json': 'application/vnd.cyclonedx+json',
};

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
        media_type: ARTIFACT_MEDIA_TYPES[name] ?? 'application/octet-stream',
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

  /** A cached scan answers with the artifacts of the scan that ran. */
  async copy(fromJobId: string, toJobId: string): Promise<void> {
    const target = await this.prepare(toJobId);
    for (const a of await this.list(fromJobId)) await copyFile(join(this.dir(fromJobId), a.name), join(target, a.name));
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
