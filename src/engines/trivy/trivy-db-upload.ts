import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Transform, type Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import {
  DB_FILES,
  DbInvalidError,
  looksLikeBoltDb,
  MAX_METADATA_BYTES,
  parseDbMetadata,
  type DbFile,
  type DbMetadata,
} from './trivy-db-policy.js';

/*
 * A Trivy DB sent as a tar (optionally gzipped): exactly the regular files trivy.db and
 * metadata.json, streamed into an empty directory and checked there. Nothing but those
 * two names is ever created, so the rules are few and strict: any other entry (a link,
 * a directory, a path with `..`, a second copy) refuses the whole upload.
 */

export type DbUploadErrorCode = 'INVALID_TRIVY_DB' | 'TRIVY_DB_TOO_LARGE' | 'TRIVY_SERVER_MODE';

export class DbUploadError extends Error {
  constructor(
    readonly code: DbUploadErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DbUploadError';
  }
}

const invalid = (message: string) => new DbUploadError('INVALID_TRIVY_DB', `Trivy DB refused: ${message}`);
// After the two files, a tar has padding and two zero blocks (10 KiB with tar's default
// blocking); more than this is data appended, which node-tar would buffer, not read.
const MAX_TRAILING_BYTES = 1024 * 1024;
const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);
/**
 * node-tar appends whatever follows the end-of-archive blocks to a growing buffer (a
 * copy per write): gigabytes of zeros after an empty tar would be held in memory. Its
 * own flag tells when it has seen the end (as src/contexts/upload-unpacker.ts reads it);
 * were it renamed, the count after both files still bounds what follows them.
 */
const SAW_EOF = Object.getOwnPropertySymbols(new Parser()).find((s) => s.description === 'sawEOF');

export interface DbEntry {
  path: string;
  type: string;
  size: number;
  linkpath?: string;
}

/**
 * The rule for one archive entry: answers the DB file it is, or undefined for the
 * archive's root directory (`./`, as `tar -C db -cf x .` writes it); throws otherwise.
 */
export function checkDbEntry(entry: DbEntry, seen: ReadonlySet<DbFile>, maxBytes: number): DbFile | undefined {
  const shown = JSON.stringify(entry.path);
  if (entry.path.includes('\0')) throw invalid(`entry ${shown} contains a NUL byte`);
  if (entry.path.startsWith('/') || entry.path.split('/').includes('..'))
    throw invalid(`entry ${shown} points outside the archive (absolute, or with '..')`);
  const name = entry.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
  if ((name === '' || name === '.') && entry.type === 'Directory') return undefined;
  const only = 'the archive may hold only the regular files trivy.db and metadata.json';
  if (entry.type === 'SymbolicLink' || entry.type === 'Link')
    throw invalid(`entry ${shown} is a link (-> ${JSON.stringify(entry.linkpath ?? '')}); ${only}`);
  if (!FILE_TYPES.has(entry.type)) throw invalid(`entry ${shown} is a ${entry.type}; ${only}`);
  if (!(DB_FILES as readonly string[]).includes(name)) throw invalid(`unexpected entry ${shown}; ${only}`);
  const file = name as DbFile;
  if (seen.has(file)) throw invalid(`${file} appears twice in the archive`);
  const limit = file === 'metadata.json' ? MAX_METADATA_BYTES : maxBytes;
  if (entry.size > limit) throw tooLarge(`${file} is ${entry.size} bytes`, limit);
  return file;
}

function tooLarge(what: string, limit: number): DbUploadError {
  return new DbUploadError(
    'TRIVY_DB_TOO_LARGE',
    `Trivy DB refused: ${what}, over the limit of ${limit} bytes (STEVEDORE_TRIVY_DB_MAX_BYTES)`,
  );
}

/** Counts bytes through; past `limit` the stream fails with `over()`. */
function counter(limit: number, over: () => Error, seen: (n: number) => void = () => undefined): Transform {
  let total = 0;
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      total += chunk.length;
      seen(total);
      if (total > limit) return done(over());
      done(null, chunk);
    },
  });
}

/** The stream's first chunk, put back: enough to tell a gzip from a tar. */
async function peek(stream: Readable): Promise<Buffer | undefined> {
  for (;;) {
    const chunk = stream.read() as Buffer | null;
    if (chunk !== null) {
      stream.unshift(chunk);
      return chunk;
    }
    if (stream.readableEnded) return undefined;
    await Promise.race([once(stream, 'readable'), once(stream, 'end')]);
  }
}

/** Sizes of what was written, and the DB's metadata. */
export interface ReceivedDb {
  meta: DbMetadata;
  sizeBytes: number;
}

/**
 * Streams the archive in `body` into `dir` (empty, on the cache's file system), with
 * `maxBytes` bounding what is sent, what it inflates to and trivy.db; then checks the
 * files: metadata.json parses and names a schema Trivy reads, trivy.db is a bbolt file.
 */
export async function receiveDbArchive(body: Readable, dir: string, maxBytes: number, signal?: AbortSignal): Promise<ReceivedDb> {
  const first = await peek(body);
  if (!first) throw invalid('the request body is empty; send a tar (or tar.gz) of trivy.db and metadata.json');
  const gzipped = first[0] === 0x1f && first[1] === 0x8b;
  const parser = new Parser({ strict: true, zstd: false, brotli: false, maxMetaEntrySize: 64 * 1024 });
  const seen = new Set<DbFile>();
  let ended = 0; // files whose last byte the parser has handed over
  const writes: Promise<void>[] = [];
  let refusal: Error | undefined;
  const refuse = (err: Error) => {
    refusal ??= err;
    parser.abort(new Error(err.message));
  };
  parser.on('entry', (entry: ReadEntry) => {
    let file: DbFile | undefined;
    try {
      if (!refusal) file = checkDbEntry(entry, seen, maxBytes);
    } catch (err) {
      refuse(err as Error);
    }
    if (!file) return void entry.resume();
    seen.add(file);
    const out: Writable = createWriteStream(join(dir, file), { flags: 'wx', mode: 0o644 });
    writes.push(
      new Promise<void>((resolve, reject) => {
        out.on('finish', resolve);
        out.on('error', (err) => {
          refuse(err);
          reject(err);
        });
      }),
    );
    entry.on('end', () => ended++);
    entry.pipe(out);
  });
  parser.on('ignoredEntry', (entry: ReadEntry) =>
    refuse(invalid(`entry ${JSON.stringify(entry.path)} of type ${entry.type} is not supported`)),
  );
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on('error', reject);
    parser.on('end', resolve);
  });
  parsed.catch(() => undefined);

  let trailing = 0;
  let firstChunk = true;
  const feed = async (tar: AsyncIterable<Buffer>) => {
    for await (const chunk of tar) {
      if (refusal) break;
      // A gzip inside the gzip would be inflated by node-tar itself, past the count.
      if (firstChunk && chunk[0] === 0x1f && chunk[1] === 0x8b) throw invalid('the archive is compressed twice');
      firstChunk = false;
      // Past the end, or both files received: what follows can only be padding (or a refused extra entry).
      const sawEof = SAW_EOF !== undefined && (parser as unknown as Record<symbol, boolean>)[SAW_EOF] === true;
      if ((sawEof || ended === DB_FILES.length) && (trailing += chunk.length) > MAX_TRAILING_BYTES)
        throw invalid(`more than ${MAX_TRAILING_BYTES} bytes follow the archive's end or its two files; it has data appended`);
      if (!parser.write(chunk)) await Promise.race([once(parser, 'drain'), parsed]);
    }
    if (!refusal) parser.end();
    await parsed;
  };
  try {
    const inflate = gzipped ? createGunzip() : new PassThrough();
    const expanded = counter(maxBytes + MAX_TRAILING_BYTES, () => tooLarge('the archive unpacks to more', maxBytes));
    await pipeline(
      body,
      counter(maxBytes, () => tooLarge('the archive is larger', maxBytes)),
      inflate,
      expanded,
      feed,
      { signal },
    );
    await Promise.all(writes);
  } catch (err) {
    if (refusal) throw refusal;
    if (err instanceof DbUploadError || signal?.aborted) throw err;
    const code = (err as { code?: string }).code ?? '';
    if (/^Z_|^TAR_|^ERR_/.test(code) || !code) throw invalid(`not a readable tar archive: ${(err as Error).message}`);
    throw err; // ENOSPC and the like: this server's problem, not the upload's
  }
  if (refusal) throw refusal;
  for (const file of DB_FILES) if (!seen.has(file)) throw invalid(`the archive lacks ${file}; it must hold trivy.db and metadata.json`);
  return checkDbDir(dir);
}

/** Checks a DB directory as Trivy would need it (also after Trivy's own download). */
export async function checkDbDir(dir: string): Promise<ReceivedDb> {
  let meta: DbMetadata;
  try {
    meta = parseDbMetadata(await readFile(join(dir, 'metadata.json'), 'utf8'));
  } catch (err) {
    if (err instanceof DbInvalidError) throw invalid(err.message);
    throw err;
  }
  const handle = await open(join(dir, 'trivy.db'), 'r');
  try {
    const head = Buffer.alloc(24);
    const { bytesRead } = await handle.read(head, 0, head.length, 0);
    if (!looksLikeBoltDb(head.subarray(0, bytesRead))) throw invalid('trivy.db is not a bbolt database (Trivy cannot open it)');
  } finally {
    await handle.close();
  }
  return { meta, sizeBytes: (await stat(join(dir, 'trivy.db'))).size };
}
