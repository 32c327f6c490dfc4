import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { extract, Parser, type ReadEntry } from 'tar';

/**
 * Content-addressed store of uploaded build contexts: `<root>/<hex>/ctx` holds the
 * unpacked tree of the upload whose bytes hash to sha256:<hex>. Uploads are untrusted,
 * so every tar entry is checked before anything is written, and a bad entry refuses
 * the whole upload instead of being skipped or rewritten.
 */
export type ContextErrorCode = 'CONTEXT_TOO_LARGE' | 'INVALID_CONTEXT' | 'CONTEXT_NOT_FOUND';

export class ContextError extends Error {
  constructor(readonly code: ContextErrorCode, message: string) {
    super(message);
    this.name = 'ContextError';
  }
}

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
const MAX_ENTRIES = 100_000;
const MAX_DEPTH = 1024; // node-tar's own limit, refused here before anything is written
const MAX_LINK_HOPS = 40; // Linux gives up (ELOOP) after as many
const STALE_TEMP_MS = 3600_000;
// Failures of this machine, not of the upload: they must not be answered with a 400.
const SERVER_SIDE = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'ENOMEM', 'EROFS']);

type Kind = 'file' | 'dir' | 'symlink' | 'hardlink';
// Anything not listed (devices, FIFOs, sparse files, unknown types) is refused.
const KINDS: Partial<Record<string, Kind>> = {
  File: 'file', OldFile: 'file', ContiguousFile: 'file', Directory: 'dir', GNUDumpDir: 'dir', SymbolicLink: 'symlink', Link: 'hardlink',
};

function invalid(message: string): ContextError {
  return new ContextError('INVALID_CONTEXT', `build context refused: ${message}`);
}

/** Components of an archive path; refuses what could point outside the context. */
function components(name: string, what: string): string[] {
  if (name.includes('\0')) throw invalid(`${what} ${JSON.stringify(name)} contains a NUL byte`);
  if (name.startsWith('/')) throw invalid(`${what} ${JSON.stringify(name)} is absolute`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw invalid(`${what} ${JSON.stringify(name)} contains '..'`);
  if (parts.length > MAX_DEPTH) throw invalid(`${what} ${JSON.stringify(name)} is nested deeper than ${MAX_DEPTH}`);
  return parts;
}

/**
 * Follows a symlink target from the link's directory the way the kernel would,
 * through the archive's own symlinks: a target that only looks contained (`a/b/..`
 * where a/b -> ..) is caught here. False if it leaves the root or loops.
 */
function staysInside(dir: string[], target: string, symlinks: ReadonlyMap<string, string>): boolean {
  const resolved = [...dir];
  const pending = target.split('/');
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (resolved.pop() === undefined) return false;
      continue;
    }
    resolved.push(part);
    const next = symlinks.get(resolved.join('/'));
    if (next === undefined) continue;
    if (next.startsWith('/') || ++hops > MAX_LINK_HOPS) return false;
    resolved.pop();
    pending.unshift(...next.split('/'));
  }
  return true;
}

/** Every path that `parts` passes through, itself included: a, a/b, a/b/c. */
function prefixes(parts: readonly string[]): string[] {
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

/** The rules every entry must pass, in archive order; then finish() for the whole. */
class EntryPolicy {
  private entries = 0;
  private unpackedBytes = 0;
  private readonly seen = new Set<string>(); // every path, with the parents it implies
  private readonly files = new Set<string>(); // regular files: the only allowed hard-link targets
  private readonly symlinks = new Map<string, string>();

  constructor(private readonly maxUnpackedBytes: number) {}

  check(entry: Pick<ReadEntry, 'path' | 'type' | 'linkpath' | 'size'>): void {
    const name = JSON.stringify(entry.path);
    if (++this.entries > MAX_ENTRIES) throw invalid(`more than ${MAX_ENTRIES} entries`);
    const kind = KINDS[entry.type];
    if (!kind) throw invalid(`${name} has entry type ${entry.type}; only files, directories and links are allowed`);
    const parts = components(entry.path, 'entry');
    const key = parts.join('/');
    if (parts.length === 0 && kind !== 'dir') throw invalid(`${name} would replace the context root`);
    // A symlink is never written through, nor replaced: node-tar would refuse the
    // first, and the second would invalidate what was checked about earlier entries.
    const through = this.firstSymlink(parts);
    if (through !== undefined) throw invalid(`${name} would be written through the symlink ${JSON.stringify(through)}`);
    if (kind === 'symlink' && this.seen.has(key)) throw invalid(`symlink ${name} would replace an earlier entry`);

    if (kind === 'symlink') this.checkSymlink(parts, entry.linkpath ?? '', name);
    if (kind === 'hardlink') this.checkHardlink(entry.linkpath ?? '', name);
    if (kind === 'file') this.unpackedBytes += entry.size;
    if (this.unpackedBytes > this.maxUnpackedBytes) throw new ContextError('CONTEXT_TOO_LARGE', `build context unpacks to more than ${this.maxUnpackedBytes} bytes`);
    if (kind === 'file' || kind === 'hardlink') this.files.add(key);
    else this.files.delete(key);
    if (kind === 'symlink') this.symlinks.set(key, entry.linkpath!);
    for (const prefix of prefixes(parts)) this.seen.add(prefix);
  }

  /** Whole-archive rule: with every symlink known, none may lead outside. */
  finish(): void {
    for (const [key, target] of this.symlinks) {
      if (!staysInside(key.split('/').slice(0, -1), target, this.symlinks)) throw invalid(`symlink ${JSON.stringify(key)} -> ${JSON.stringify(target)} leads outside the context or loops`);
    }
  }

  private firstSymlink(parts: readonly string[]): string | undefined {
    return prefixes(parts).find((prefix) => this.symlinks.has(prefix));
  }

  private checkSymlink(parts: string[], target: string, name: string): void {
    const shown = `symlink ${name} -> ${JSON.stringify(target)}`;
    if (target === '' || target.includes('\0')) throw invalid(`${shown} has an empty or malformed target`);
    if (target.startsWith('/')) throw invalid(`${shown} is absolute`);
    // Relative to the link's own directory, as the kernel will read it.
    const resolved = posix.normalize(posix.join(parts.slice(0, -1).join('/') || '.', target));
    if (resolved === '..' || resolved.startsWith('../')) throw invalid(`${shown} leads outside the context`);
    // node-tar refuses a target that runs through a symlink already on disk; say so up front.
    const through = this.firstSymlink(resolved.split('/').filter((p) => p !== '.'));
    if (through !== undefined) throw invalid(`${shown} runs through or onto the symlink ${JSON.stringify(through)}`);
  }

  private checkHardlink(target: string, name: string): void {
    const shown = `hard link ${name} -> ${JSON.stringify(target)}`;
    if (target === '') throw invalid(`${shown} has no target`);
    // Hard-link targets are archive paths, relative to the root, not to the link.
    const parts = components(target, `hard link ${name}: target`);
    const through = this.firstSymlink(parts);
    if (through !== undefined) throw invalid(`${shown} runs through or onto the symlink ${JSON.stringify(through)}`);
    if (!this.files.has(parts.join('/'))) throw invalid(`${shown} does not name an earlier regular file in the archive`);
  }
}

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

/** First pass: reads every header (writing nothing) so a bad entry is refused before extraction. */
function inspect(file: string, policy: EntryPolicy): Promise<void> {
  return new Promise((resolve, reject) => {
    // strict: a checksum failure or truncated archive is an error, not a skipped entry.
    const parser = new Parser({ strict: true, zstd: false, brotli: false });
    const source = createReadStream(file);
    let refusal: unknown;
    const fail = (err: unknown) => {
      source.destroy();
      reject(refusal ?? (err instanceof ContextError ? err : invalid(`not a readable tar archive: ${(err as Error).message}`)));
    };
    parser.on('entry', (entry: ReadEntry) => {
      try {
        if (!refusal) policy.check(entry);
      } catch (err) {
        refusal = err;
        parser.abort(new Error((err as Error).message));
      }
      entry.resume();
    });
    // Entries of types node-tar does not know (and oversized headers) are skipped by
    // it, silently; here they refuse the upload.
    parser.on('ignoredEntry', (entry: ReadEntry) => {
      refusal ??= invalid(`${JSON.stringify(entry.path)} has entry type ${entry.type}, which is not supported`);
      parser.abort(new Error('unsupported entry'));
    });
    parser.on('error', fail);
    parser.on('end', () => (refusal ? fail(refusal) : resolve()));
    source.on('error', (err) => {
      reject(err); // our own temp file: a server-side failure, settled before the abort below
      parser.abort(err);
    });
    source.pipe(parser as unknown as NodeJS.WritableStream);
  });
}
