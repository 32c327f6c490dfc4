import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract } from 'tar';
import { ContextError, EntryPolicy, inspect, invalid, MAX_DEPTH } from './tar-entry-policy.js';

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
  /** Largest sum of file sizes once unpacked; gzip hides it. Default 10 × maxBytes. */
  maxUnpackedBytes?: number;
}

export interface StoredContext {
  digest: string;
  size_bytes: number;
  /** False when the same bytes were stored before. */
  created: boolean;
}

const DIGEST = /^sha256:([a-f0-9]{64})$/;
const HEX = /^[a-f0-9]{64}$/;
const STALE_TEMP_MS = 3600_000;
// Failures of this machine, not of the upload: they must not be answered with a 400.
const SERVER_SIDE = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'ENOMEM', 'EROFS']);

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

export class ContextStore {
  private readonly root: string;
  private readonly maxUnpackedBytes: number;

  constructor(private readonly options: ContextStoreOptions) {
    this.root = options.root;
    this.maxUnpackedBytes = options.maxUnpackedBytes ?? options.maxBytes * 10;
  }

  /** Stores an upload; the digest is of the bytes as sent, so a client can compute it too. */
  async put(body: NodeJS.ReadableStream | AsyncIterable<Buffer>, contentType: 'application/x-tar' | 'application/gzip'): Promise<StoredContext> {
    await mkdir(this.root, { recursive: true });
    const upload = join(this.root, `upload.tmp-${randomBytes(8).toString('hex')}`);
    try {
      const { hex, size, head } = await this.receive(body, upload);
      const stored = { digest: `sha256:${hex}`, size_bytes: size };
      const final = join(this.root, hex);
      if (await this.touch(final)) return { ...stored, created: false };
      // node-tar recognises gzip by its magic bytes whatever the label; a body
      // labelled gzip without them is not what the client meant to send.
      if (contentType === 'application/gzip' && !(head[0] === 0x1f && head[1] === 0x8b)) throw invalid('the body is labelled application/gzip but is not gzip');

      const policy = new EntryPolicy(this.maxUnpackedBytes);
      await inspect(upload, policy);
      policy.finish();
      const staging = `${final}.tmp-${randomBytes(8).toString('hex')}`;
      try {
        await mkdir(join(staging, 'ctx'), { recursive: true });
        await this.unpack(upload, join(staging, 'ctx'));
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
    if (!(await this.touch(dir))) throw new ContextError('CONTEXT_NOT_FOUND', `no build context ${digest} (never uploaded, or unused for longer than ${this.options.ttlSeconds} s)`);
    return join(dir, 'ctx');
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
        if (!(await rename(doomed, aside).then(() => true, () => false))) continue;
        doomed = aside;
      }
      await rm(doomed, { recursive: true, force: true });
      removed++;
    }
    return removed;
  }

  /** Streams the body to `file`, hashing and counting; stops at maxBytes. */
  private async receive(body: NodeJS.ReadableStream | AsyncIterable<Buffer>, file: string) {
    const hash = createHash('sha256');
    const limit = this.options.maxBytes;
    let size = 0;
    let head = Buffer.alloc(0);
    async function* meter(source: AsyncIterable<Buffer | string>): AsyncGenerator<Buffer> {
      for await (const chunk of source) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.length;
        if (size > limit) throw new ContextError('CONTEXT_TOO_LARGE', `build context is larger than ${limit} bytes`);
        if (head.length < 2) head = Buffer.concat([head, bytes.subarray(0, 2 - head.length)]);
        hash.update(bytes);
        yield bytes;
      }
    }
    // Opened before streaming, so the file exists by the time a failed upload is cleaned up.
    const handle = await open(file, 'wx', 0o600);
    await pipeline(body, meter, handle.createWriteStream());
    return { hex: hash.digest('hex'), size, head };
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

  /**
   * Second pass, after inspect() accepted every entry and the archive as a whole.
   * strict turns any refusal of node-tar's own (its symlink and path checks stay on:
   * preservePaths false) into an error, never a silently skipped entry.
   */
  private async unpack(file: string, cwd: string): Promise<void> {
    try {
      await extract({ file, cwd, strict: true, preservePaths: false, preserveOwner: false, chmod: false, zstd: false, brotli: false, maxDepth: MAX_DEPTH });
    } catch (err) {
      if (SERVER_SIDE.has(errorCode(err) ?? '')) throw err;
      // Writes still in flight may outlive this; gc() sweeps the staging dir they land in.
      throw invalid(`could not unpack: ${(err as Error).message}`);
    }
  }
}
