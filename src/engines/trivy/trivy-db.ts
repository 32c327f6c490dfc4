import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isLoopbackRegistry } from '../../oci/references.js';
import { lastLine, toolEnv, type ProcessRunner } from '../process-runner.js';
import {
  decideUpdate,
  DEFAULT_DB_REPOSITORIES,
  missingDbHint,
  parseDbMetadata,
  type DbMetadata,
  type DbSource,
  type LastAttempt,
} from './trivy-db-policy.js';
import { registryAnswers, repositoryRegistry } from './trivy-db-probe.js';
import { checkDbDir, DbUploadError, receiveDbArchive } from './trivy-db-upload.js';

/**
 * The vulnerability DB of this process's Trivy cache (`<cache dir>/db/`): its state, the
 * `auto` update policy, and loading one sent to the admin endpoint. A new DB, downloaded
 * or uploaded, is staged in a directory of its own inside the cache dir, checked, then
 * renamed into place file by file (trivy.db first): a scan that has the old trivy.db
 * open keeps reading it, and none ever opens a half-written one.
 */
export interface TrivyDbSettings {
  trivy: string;
  cacheDir: string;
  /** true: Trivy updates during each scan; false: never; auto: stevedore decides (trivy-db-policy.ts). */
  dbUpdate: boolean | 'auto';
  /** OCI repositories of the DB, in order (Trivy's --db-repository); Trivy's defaults when unset. */
  dbRepositories?: string[];
  /** Largest DB the admin endpoint takes (sent, unpacked, and trivy.db itself). */
  dbMaxBytes?: number;
  serverUrl?: string;
  insecureRegistries: string[];
  dockerConfigDir?: string;
}

export const DEFAULT_DB_MAX_BYTES = 2 * 1024 ** 3;
/** A real DB is ~80 MB compressed; a scan waiting for the first one waits at most this. */
const DOWNLOAD_TIMEOUT_MS = 15 * 60_000;
/** How long the answer of a reachability probe is trusted. */
const PROBE_TTL_MS = 5 * 60_000;
/** Next to db/, not in it: Trivy owns db/. Says where the DB there came from. */
const SOURCE_FILE = 'stevedore-db-source.json';

export type DbUpdateResult = 'updated' | 'kept' | 'unreachable' | 'failed';

export interface TrivyDbState {
  /** `server`: scans run against TRIVY_SERVER_URL, which keeps its own DB. */
  mode: 'auto' | 'true' | 'false' | 'server';
  present: boolean;
  path: string;
  updated_at: string | null;
  next_update: string | null;
  downloaded_at: string | null;
  schema_version: number | null;
  size_bytes: number | null;
  source: DbSource | null;
  repositories: string[];
  last_update: { at: string; result: DbUpdateResult; message: string } | null;
  /** Why a DB that is there cannot be used (e.g. another schema version). */
  problem?: string;
  /** With no usable DB: how to provide one. */
  hint?: string;
}

interface SourceRecord {
  source: Exclude<DbSource, 'found'>;
  at: string;
  updated_at: string;
  repository?: string;
}

export interface LoadedDb {
  updated_at: string;
  version: number;
  size_bytes: number;
}

export class TrivyDb {
  private last?: LastAttempt & { result: DbUpdateResult; message: string };
  private updating?: Promise<void>;
  private installing: Promise<unknown> = Promise.resolve();
  private probes = new Map<string, { ok: boolean; until: number }>();
  private readonly stopping = new AbortController();

  constructor(
    private readonly runner: ProcessRunner,
    private readonly settings: TrivyDbSettings,
    private readonly now: () => number = Date.now,
  ) {}

  get dir(): string {
    return join(this.settings.cacheDir, 'db');
  }

  get repositories(): string[] {
    return this.settings.dbRepositories?.length ? this.settings.dbRepositories : DEFAULT_DB_REPOSITORIES;
  }

  get maxBytes(): number {
    return this.settings.dbMaxBytes ?? DEFAULT_DB_MAX_BYTES;
  }

  /** The metadata of a DB Trivy can use with --skip-db-update; undefined when there is none (or it is unusable). */
  async metadata(): Promise<DbMetadata | undefined> {
    return (await this.read()).meta;
  }

  private async read(): Promise<{ meta?: DbMetadata; size?: number; problem?: string }> {
    let text: string;
    let size: number;
    try {
      [text, size] = await Promise.all([
        readFile(join(this.dir, 'metadata.json'), 'utf8'),
        stat(join(this.dir, 'trivy.db')).then((s) => s.size),
      ]);
    } catch {
      return {};
    }
    try {
      return { meta: parseDbMetadata(text), size };
    } catch (err) {
      return { problem: (err as Error).message, size };
    }
  }

  /** What GET /v1/system and the start-up line report. */
  async state(): Promise<TrivyDbState> {
    const { meta, size, problem } = await this.read();
    const recorded = meta ? await this.sourceRecord() : undefined;
    const mode = this.settings.serverUrl ? 'server' : String(this.settings.dbUpdate);
    return {
      mode: mode as TrivyDbState['mode'],
      present: meta !== undefined,
      path: this.dir,
      updated_at: meta?.UpdatedAt ?? null,
      next_update: meta?.NextUpdate ?? null,
      downloaded_at: meta?.DownloadedAt ?? null,
      schema_version: meta?.Version ?? null,
      size_bytes: meta ? (size ?? null) : null,
      source: meta ? (recorded && recorded.updated_at === meta.UpdatedAt ? recorded.source : 'found') : null,
      repositories: this.repositories,
      last_update: this.last ? { at: new Date(this.last.at).toISOString(), result: this.last.result, message: this.last.message } : null,
      ...(problem ? { problem } : {}),
      ...(meta || this.settings.serverUrl ? {} : { hint: this.missingHint() }),
    };
  }

  /** SCANNER_UNAVAILABLE's message without a DB: every way to provide one. */
  missingHint(cause?: string): string {
    const why = cause ?? (this.last && !this.last.ok ? this.last.message : undefined);
    return missingDbHint(this.settings.cacheDir, this.settings.dbUpdate, this.repositories, why);
  }

  /**
   * Before a scan, in `auto` mode: with no DB, waits for a download (quick to give up
   * when no repository answers); with a due one, starts an update beside the scan.
   * Never throws: the scan then finds a DB or reports the hint.
   */
  async prepare(): Promise<void> {
    if (this.settings.serverUrl || this.settings.dbUpdate !== 'auto') return;
    const meta = await this.metadata();
    const recorded = meta ? await this.sourceRecord() : undefined;
    // A DB loaded through the admin endpoint counts as fetched when it was loaded.
    const fetchedAt = [meta?.DownloadedAt, recorded?.updated_at === meta?.UpdatedAt ? recorded?.at : undefined]
      .filter((t): t is string => Boolean(t))
      .sort((a, b) => Date.parse(a) - Date.parse(b))
      .pop();
    const decision = decideUpdate(this.now(), meta && { ...meta, DownloadedAt: fetchedAt }, this.last);
    if (decision === 'blocking') await this.update();
    else if (decision === 'background') void this.update();
  }

  /** Stops a download in progress (at shutdown); none starts after. */
  close(): void {
    this.stopping.abort();
  }

  /** One update at a time; callers during one share it. */
  update(): Promise<void> {
    this.updating ??= this.download().finally(() => (this.updating = undefined));
    return this.updating;
  }

  private async download(): Promise<void> {
    const started = this.now();
    const record = (ok: boolean, result: DbUpdateResult, message: string) => (this.last = { at: started, ok, result, message });
    if (this.stopping.signal.aborted) return;
    let reachable: string[] = [];
    let staging: string | undefined;
    // Nothing here may throw: a background update has no one to throw to.
    try {
      reachable = await this.reachableRepositories();
      if (reachable.length === 0) {
        record(false, 'unreachable', `no answer from ${this.repositories.map(repositoryRegistry).join(', ')} within a few seconds`);
        return;
      }
      await mkdir(this.settings.cacheDir, { recursive: true });
      staging = await mkdtemp(join(this.settings.cacheDir, '.db-download-'));
      const args = ['image', '--download-db-only', '--cache-dir', staging, '--quiet', '--no-progress'];
      args.push('--skip-check-update', '--skip-version-check', '--disable-telemetry');
      for (const repository of reachable) args.push('--db-repository', repository);
      if (this.needsInsecure(reachable)) args.push('--insecure');
      const signal = this.stopping.signal;
      await this.runner.run(this.settings.trivy, args, { timeoutMs: DOWNLOAD_TIMEOUT_MS, env: this.env(), signal });
      const { meta } = await checkDbDir(join(staging, 'db'));
      const current = await this.metadata();
      if (current && Date.parse(current.UpdatedAt) > Date.parse(meta.UpdatedAt)) {
        record(true, 'kept', `the DB present (${current.UpdatedAt}) is newer than the one downloaded (${meta.UpdatedAt})`);
        return;
      }
      await this.install(join(staging, 'db'), meta, { source: 'downloaded', repository: reachable[0] });
      record(true, 'updated', `downloaded the DB of ${meta.UpdatedAt} from ${reachable.join(' or ')}`);
    } catch (err) {
      const stderr = (err as { stderrTail?: string }).stderrTail;
      record(false, 'failed', `download from ${reachable.join(', ')} failed: ${stderr ? lastLine(stderr) : (err as Error).message}`);
    } finally {
      if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  /** The configured repositories whose registry answers, in order; answers cached for a while. */
  private async reachableRepositories(): Promise<string[]> {
    const answers = await Promise.all(
      this.repositories.map(async (repository) => {
        const registry = repositoryRegistry(repository);
        const cached = this.probes.get(registry);
        if (cached && this.now() < cached.until) return cached.ok;
        const ok = await registryAnswers(registry, this.settings.insecureRegistries);
        this.probes.set(registry, { ok, until: this.now() + PROBE_TTL_MS });
        return ok;
      }),
    );
    return this.repositories.filter((_, i) => answers[i]);
  }

  private needsInsecure(repositories: string[]): boolean {
    return repositories.some((r) => {
      const registry = repositoryRegistry(r);
      return !isLoopbackRegistry(registry) && this.settings.insecureRegistries.includes(registry);
    });
  }

  /**
   * PUT /v1/system/trivy-db: streams the archive into a staging directory in the cache
   * dir, checks it (trivy-db-upload.ts), then puts it in place. Throws DbUploadError.
   */
  async load(body: Readable, signal?: AbortSignal): Promise<LoadedDb> {
    if (this.settings.serverUrl)
      throw new DbUploadError(
        'TRIVY_SERVER_MODE',
        `scans here run on the Trivy server ${this.settings.serverUrl} (TRIVY_SERVER_URL), which keeps its own DB: ` +
          "load it into that server's cache dir",
      );
    await mkdir(this.settings.cacheDir, { recursive: true });
    const staging = await mkdtemp(join(this.settings.cacheDir, '.db-upload-'));
    try {
      const { meta, sizeBytes } = await receiveDbArchive(body, staging, this.maxBytes, signal);
      await this.install(staging, meta, { source: 'uploaded' });
      return { updated_at: meta.UpdatedAt, version: meta.Version, size_bytes: sizeBytes };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Renames a checked DB into place, one install at a time. Same file system: each rename is atomic. */
  private install(from: string, meta: DbMetadata, origin: Omit<SourceRecord, 'at' | 'updated_at'>): Promise<void> {
    const run = this.installing.then(async () => {
      await mkdir(this.dir, { recursive: true });
      await rename(join(from, 'trivy.db'), join(this.dir, 'trivy.db'));
      await rename(join(from, 'metadata.json'), join(this.dir, 'metadata.json'));
      const record: SourceRecord = { ...origin, at: new Date(this.now()).toISOString(), updated_at: meta.UpdatedAt };
      await writeFile(join(this.settings.cacheDir, SOURCE_FILE), JSON.stringify(record));
    });
    this.installing = run.catch(() => undefined);
    return run;
  }

  private async sourceRecord(): Promise<SourceRecord | undefined> {
    try {
      return JSON.parse(await readFile(join(this.settings.cacheDir, SOURCE_FILE), 'utf8')) as SourceRecord;
    } catch {
      return undefined;
    }
  }

  private env(): NodeJS.ProcessEnv {
    const env = toolEnv();
    if (this.settings.dockerConfigDir) env.DOCKER_CONFIG = this.settings.dockerConfigDir;
    return env;
  }
}
