import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ContextError, invalid } from './tar-entry-policy.js';
import { unpackWhenFree } from './unpack-runner.js';

/**
 * Content-addressed store of uploaded build contexts: `<root>/<hex>/ctx` holds the
 * unpacked tree of the upload whose bytes hash to sha256:<hex>. Uploads are untrusted,
 * so every tar entry is checked before anything is written, and a bad entry refuses
 * the whole upload instead of being skipped or rewritten.
 */
export { ContextError, type ContextErrorCode } from './tar-entry-policy.js';

export interface ContextStoreOptions {
  /** Holds one directory per context, e.g. `<state dir>/contexts`. */
  root: string;
  /** Largest upload, counted in bytes as sent (compressed, for gzip). */
  maxBytes: number;
  /** Contexts not used for this long are removed by gc(). */
  ttlSeconds: number;
  /** Largest sum of file sizes once unpacked (and decompressed tar stream); gzip hides it. Default 10 × maxBytes. */
  maxExpandedBytes?: number;
  /** Most entries in one context. Default 65 536. */
  maxEntries?: number;
  /** Receiving, checking and unpacking one upload, all told. Default 300 s. */
  uploadTimeoutMs?: number;
}

export interface PutOptions {
  /**
   * What is left of the uploading tenant's quota, in unpacked bytes; a function is
   * asked only when the upload is about to be unpacked (not for bytes stored before).
   */
  budgetBytes?: number | (() => Promise<number>);
}

export interface StoredContext {
  digest: string;
  size_bytes: number;
  /** Sum of the file sizes once unpacked: what the context takes on disk. */
  expanded_bytes: number;
  /** False when the same bytes were stored before. */
  created: boolean;
}

export interface ContextStats {
  /** Sum of the regular files' sizes. */
  bytes: number;
  /** Regular files. */
  files: number;
}

/** Regular files under `dir` and their sizes (symlinks not followed). */
async function countTree(dir: string): Promise<ContextStats> {
  const totals = { bytes: 0, files: 0 };
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    totals.files++;
    totals.bytes += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return totals;
}

const DIGEST = /^sha256:([a-f0-9]{64})$/;
const HEX = /^[a-f0-9]{64}$/;
const STALE_TEMP_MS = 3600_000;
const META = 'meta.json';

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export class ContextStore {
  private readonly root: string;
  private readonly maxExpandedBytes: number;
  private readonly maxEntries: number;
  private readonly uploadTimeoutMs: number;

  constructor(private readonly options: ContextStoreOptions) {
    this.root = options.root;
    this.maxExpandedBytes = options.maxExpandedBytes ?? options.maxBytes * 10;
    this.maxEntries = options.maxEntries ?? 65_536;
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? 300_000;
  }

  /**
   * Stores an upload; the digest is of the bytes as sent, so a client can compute it too.
   * The body is streamed to a temp file here; everything that costs CPU in proportion
   * to what it expands to (inflating, tar parsing, entry checks, writing the tree) runs
   * in a child process with hard limits. Nothing of a refused upload stays on disk.
   */
  async put(
    body: NodeJS.ReadableStream | AsyncIterable<Buffer>,
    contentType: 'application/x-tar' | 'application/gzip',
    options: PutOptions = {},
  ): Promise<StoredContext> {
    const deadline = Date.now() + this.uploadTimeoutMs;
    await mkdir(this.root, { recursive: true });
    const upload = join(this.root, `upload.tmp-${randomBytes(8).toString('hex')}`);
    try {
      const { hex, size, head } = await this.receive(body, upload, deadline);
      const final = join(this.root, hex);
      if (await this.touch(final))
        return { digest: `sha256:${hex}`, size_bytes: size, expanded_bytes: await this.expandedBytes(final, size), created: false };
      // A body labelled gzip without the magic bytes is not what the client meant to send.
      if (contentType === 'application/gzip' && !(head[0] === 0x1f && head[1] === 0x8b))
        throw invalid('the body is labelled application/gzip but is not gzip');

      const budgetBytes = typeof options.budgetBytes === 'function' ? await options.budgetBytes() : options.budgetBytes;
      const limits = { maxExpandedBytes: this.maxExpandedBytes, maxEntries: this.maxEntries, budgetBytes };
      const staging = `${final}.tmp-${randomBytes(8).toString('hex')}`;
      try {
        await mkdir(join(staging, 'ctx'), { recursive: true });
        const result = await unpackWhenFree({ file: upload, dest: join(staging, 'ctx'), limits }, Math.max(1000, deadline - Date.now()));
        await writeFile(
          join(staging, META),
          JSON.stringify({ expanded_bytes: result.expandedBytes, entries: result.entries, files: result.files }),
        );
        const stored = { digest: `sha256:${hex}`, size_bytes: size, expanded_bytes: result.expandedBytes };
        try {
          await rename(staging, final);
        } catch (err) {
          // Another upload of the same bytes finished first: theirs is as good as ours.
          if (errorCode(err) === 'ENOTEMPTY' || errorCode(err) === 'EEXIST') return { ...stored, created: false };
          throw err;
        }
        return { ...stored, created: true };
      } finally {
        await rm(staging, { recursive: true, force: true });
      }
    } finally {
      await rm(upload, { force: true });
    }
  }

  /** The unpacked tree for a digest; each call counts as a use for gc(). */
  async path(digest: string): Promise<string> {
    const match = typeof digest === 'string' ? DIGEST.exec(digest) : null;
    if (!match) throw invalid(`${JSON.stringify(digest)} is not a sha256:<64 lowercase hex> digest`);
    const dir = join(this.root, match[1]!);
    if (!(await this.touch(dir)))
      throw new ContextError(
        'CONTEXT_NOT_FOUND',
        `no build context ${digest} (never uploaded, or unused for longer than ${this.options.ttlSeconds} s)`,
      );
    return join(dir, 'ctx');
  }

  /**
   * What a stored context holds, for a build's result: the sum of its file sizes and
   * how many regular files it has, as counted when it was unpacked (a context stored
   * before the count was recorded is counted now, once).
   */
  async stats(digest: string): Promise<ContextStats> {
    const ctx = await this.path(digest);
    const metaFile = join(dirname(ctx), META);
    const meta = await readFile(metaFile, 'utf8')
      .then((text) => JSON.parse(text) as Record<string, unknown>)
      .catch((): Record<string, unknown> => ({}));
    if (typeof meta.expanded_bytes === 'number' && typeof meta.files === 'number') return { bytes: meta.expanded_bytes, files: meta.files };
    const counted = await countTree(ctx);
    await writeFile(metaFile, JSON.stringify({ ...meta, expanded_bytes: counted.bytes, files: counted.files })).catch(() => undefined);
    return counted;
  }

  /** Removes contexts unused for the TTL and temp files of uploads that died; returns how many. */
  async gc(now = Date.now()): Promise<number> {
    const names = await readdir(this.root).catch((err: unknown) => {
      if (errorCode(err) === 'ENOENT') return [];
      throw err;
    });
    let removed = 0;
    for (const name of names) {
      const maxAgeMs = HEX.test(name) ? this.options.ttlSeconds * 1000 : name.includes('.tmp-') ? STALE_TEMP_MS : undefined;
      if (maxAgeMs === undefined) continue;
      const info = await lstat(join(this.root, name)).catch(() => undefined);
      if (!info || now - info.mtimeMs <= maxAgeMs) continue;
      let doomed = join(this.root, name);
      if (HEX.test(name)) {
        // Renamed away first so that path() sees the whole tree or none of it.
        const aside = join(this.root, `${name}.tmp-gc-${randomBytes(4).toString('hex')}`);
        if (
          !(await rename(doomed, aside).then(
            () => true,
            () => false,
          ))
        )
          continue;
        doomed = aside;
      }
      await rm(doomed, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  /**
   * Streams the body to `file`, hashing and counting; stops at maxBytes and at the
   * deadline. The request is unpiped, never destroyed, so that its socket can still
   * carry the error answer (with `connection: close`).
   */
  private async receive(body: NodeJS.ReadableStream | AsyncIterable<Buffer>, file: string, deadline: number) {
    const hash = createHash('sha256');
    const limit = this.options.maxBytes;
    let size = 0;
    let head = Buffer.alloc(0);
    const meter = new Transform({
      transform(chunk: Buffer | string, _encoding, done) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.length;
        if (size > limit)
          return done(new ContextError('CONTEXT_TOO_LARGE', `build context is larger than ${limit} bytes (STEVEDORE_CONTEXT_MAX_BYTES)`));
        if (head.length < 2) head = Buffer.concat([head, bytes.subarray(0, 2 - head.length)]);
        hash.update(bytes);
        done(null, bytes);
      },
    });
    const source = body instanceof Readable ? body : Readable.from(body as AsyncIterable<Buffer>);
    const seconds = Math.round(this.uploadTimeoutMs / 1000);
    const timer = setTimeout(
      () =>
        meter.destroy(
          new ContextError(
            'UPLOAD_TIMEOUT',
            `the upload did not arrive within ${seconds} s (STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS); ${size} bytes came`,
          ),
        ),
      Math.max(0, deadline - Date.now()),
    );
    const onSourceError = () =>
      meter.destroy(new ContextError('UPLOAD_ABORTED', `the client closed the connection after ${size} bytes of the upload`));
    // 'close' before 'end': the client went away (not every abort is an 'error').
    const onAborted = () => !source.readableEnded && onSourceError();
    source.once('error', onSourceError);
    source.once('close', onAborted);
    try {
      // Opened before streaming, so the file exists by the time a failed upload is cleaned up.
      const handle = await open(file, 'wx', 0o600);
      // Gone already (while the quota was looked up): no 'close' is coming to say so.
      if (source.readableAborted) onSourceError();
      source.pipe(meter);
      await pipeline(meter, handle.createWriteStream());
    } finally {
      clearTimeout(timer);
      source.unpipe(meter);
      source.removeListener('error', onSourceError);
      source.removeListener('close', onAborted);
      if (!(body instanceof Readable)) source.destroy();
    }
    return { hex: hash.digest('hex'), size, head };
  }

  /** Unpacked size recorded with a stored context (its upload size for older ones). */
  private async expandedBytes(dir: string, fallback: number): Promise<number> {
    try {
      const meta = JSON.parse(await readFile(join(dir, META), 'utf8')) as { expanded_bytes?: unknown };
      return typeof meta.expanded_bytes === 'number' ? meta.expanded_bytes : fallback;
    } catch {
      return fallback;
    }
  }

  /** Marks a context as used; false if it is not there. */
  private async touch(dir: string): Promise<boolean> {
    try {
      if (!(await stat(join(dir, 'ctx'))).isDirectory()) return false;
      const now = new Date();
      await utimes(dir, now, now);
      return true;
    } catch (err) {
      if (errorCode(err) === 'ENOENT' || errorCode(err) === 'ENOTDIR') return false;
      throw err;
    }
  }
}
