/*
 * The rules about Trivy's vulnerability DB that need no disk and no network: what a
 * metadata.json must say, whether a trivy.db looks like one, when `auto` updates, and
 * the message that tells an operator how to provide a DB. Pure, so unit tests hold them.
 */

/** The DB schema Trivy v0.74 reads (trivy-db's db.SchemaVersion); it refuses any other. */
export const TRIVY_DB_SCHEMA_VERSION = 2;
/** Trivy's own defaults for --db-repository (pkg/db: the GCR mirror first, then GHCR). */
export const DEFAULT_DB_REPOSITORIES = ['mirror.gcr.io/aquasec/trivy-db:2', 'ghcr.io/aquasecurity/trivy-db:2'];
/** The files of a DB, in `<cache dir>/db/`. */
export const DB_FILES = ['trivy.db', 'metadata.json'] as const;
export type DbFile = (typeof DB_FILES)[number];
/** A metadata.json is a few hundred bytes; anything near this is not one. */
export const MAX_METADATA_BYTES = 64 * 1024;

/** After a failed update attempt (unreachable, or the download failed), `auto` waits this long before the next. */
export const UPDATE_RETRY_MS = 10 * 60_000;
/** Trivy's own rule: a DB downloaded within the last hour is not downloaded again, whatever NextUpdate says. */
export const RECENT_DOWNLOAD_MS = 60 * 60_000;

export interface DbMetadata {
  Version: number;
  UpdatedAt: string;
  NextUpdate?: string;
  DownloadedAt?: string;
}

export class DbInvalidError extends Error {
  override name = 'DbInvalidError';
}

/** Go's zero time.Time, which Trivy writes for a field it never set. */
const isZeroTime = (value: string | undefined) => !value || value.startsWith('0001-01-01');
const validTime = (value: unknown): value is string => typeof value === 'string' && !Number.isNaN(Date.parse(value));

/** Reads metadata.json as Trivy v0.74 would accept it with --skip-db-update; throws DbInvalidError saying why not. */
export function parseDbMetadata(text: string): DbMetadata {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new DbInvalidError(`metadata.json is not JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new DbInvalidError('metadata.json is not a JSON object');
  const m = raw as Record<string, unknown>;
  if (!Number.isInteger(m.Version)) throw new DbInvalidError('metadata.json lacks an integer Version (the DB schema version)');
  if (m.Version !== TRIVY_DB_SCHEMA_VERSION)
    throw new DbInvalidError(
      `the DB has schema version ${String(m.Version)}; Trivy v0.74 reads schema ${TRIVY_DB_SCHEMA_VERSION} only ` +
        `(download it from a trivy-db:${TRIVY_DB_SCHEMA_VERSION} repository)`,
    );
  if (!validTime(m.UpdatedAt) || isZeroTime(m.UpdatedAt)) throw new DbInvalidError('metadata.json lacks UpdatedAt (an RFC 3339 time)');
  for (const field of ['NextUpdate', 'DownloadedAt'] as const)
    if (m[field] !== undefined && !validTime(m[field])) throw new DbInvalidError(`metadata.json has a ${field} that is not a time`);
  return {
    Version: m.Version,
    UpdatedAt: m.UpdatedAt,
    NextUpdate: isZeroTime(m.NextUpdate as string | undefined) ? undefined : (m.NextUpdate as string),
    DownloadedAt: isZeroTime(m.DownloadedAt as string | undefined) ? undefined : (m.DownloadedAt as string),
  };
}

/**
 * trivy.db is a bbolt file: its first page is a meta page, whose header (16 bytes) is
 * followed by the magic 0xED0CDAED and format version 2, little-endian. A file that
 * does not start so would make every scan fail; it is refused at load instead.
 */
export function looksLikeBoltDb(head: Buffer): boolean {
  return head.length >= 24 && head.readUInt32LE(16) === 0xed0cdaed && head.readUInt32LE(20) === 2;
}

/** Where the DB a scan would use came from, as far as this process knows. */
export type DbSource = 'downloaded' | 'uploaded' | 'found';

/** What `auto` does before a scan. */
export type UpdateDecision =
  /** The DB is current (NextUpdate ahead, or downloaded within the hour): nothing. */
  | 'fresh'
  /** A DB is present but due: the scan uses it, an update runs beside it. */
  | 'background'
  /** No DB: the scan can only wait for one. */
  | 'blocking'
  /** An attempt failed a short while ago: not again yet (the scan uses what there is). */
  | 'backoff';

export interface LastAttempt {
  at: number;
  ok: boolean;
}

/** The `auto` policy: at most one update per NextUpdate interval, never retried in a tight loop. */
export function decideUpdate(now: number, meta: DbMetadata | undefined, last: LastAttempt | undefined): UpdateDecision {
  if (meta) {
    if (meta.NextUpdate && now < Date.parse(meta.NextUpdate)) return 'fresh';
    if (meta.DownloadedAt && now < Date.parse(meta.DownloadedAt) + RECENT_DOWNLOAD_MS) return 'fresh';
  }
  if (last && !last.ok && now < last.at + UPDATE_RETRY_MS) return 'backoff';
  if (last?.ok && meta && now < last.at + RECENT_DOWNLOAD_MS) return 'fresh';
  return meta ? 'background' : 'blocking';
}

/** The message of SCANNER_UNAVAILABLE without a DB: every way to provide one, with this server's paths. */
export function missingDbHint(cacheDir: string, mode: boolean | 'auto', repositories: readonly string[], why?: string): string {
  const dir = `${cacheDir.replace(/\/+$/, '')}/db`;
  const from = repositories.join(', ');
  const updates =
    mode === false
      ? 'DB updates are off (STEVEDORE_TRIVY_DB_UPDATE=false)'
      : why
        ? `no DB could be downloaded from ${from} (${why})`
        : `none has been downloaded from ${from} yet (tried when a scan needs one)`;
  return (
    `no Trivy vulnerability DB in ${dir} and ${updates}. Provide one: ` +
    `(1) load it: PUT /v1/system/trivy-db with the admin token and a tar (or tar.gz) holding exactly trivy.db and metadata.json; ` +
    `(2) copy trivy.db and metadata.json into ${dir}/ (the files of \`trivy image --download-db-only --cache-dir DIR\`, in DIR/db); ` +
    `(3) let stevedore download it: STEVEDORE_TRIVY_DB_UPDATE=auto (or true) with a reachable STEVEDORE_TRIVY_DB_REPOSITORY ` +
    `(a registry holding trivy-db:${TRIVY_DB_SCHEMA_VERSION}, e.g. a mirror)`
  );
}
