import { posix } from 'node:path';
import type { ReadEntry } from 'tar';

/**
 * The checks every entry of an uploaded context passes before anything is written:
 * a bad entry refuses the whole upload instead of being skipped or rewritten.
 */
export type ContextErrorCode =
  | 'CONTEXT_TOO_LARGE'
  | 'INVALID_CONTEXT'
  | 'CONTEXT_NOT_FOUND'
  | 'CONTEXT_QUOTA_EXCEEDED'
  | 'UPLOAD_TIMEOUT'
  | 'UPLOAD_ABORTED'
  | 'UNPACKER_BUSY';

export class ContextError extends Error {
  constructor(
    readonly code: ContextErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ContextError';
  }
}

// Every entry's parent chain is tracked (and handed to node-tar's maxDepth): depth and
// length bound that work per entry, where node-tar's own 1024 levels would not.
export const MAX_DEPTH = 256;
const MAX_PATH_BYTES = 4096; // PATH_MAX
const MAX_NAME_BYTES = 255; // NAME_MAX of every Linux file system a context lands on
// Each entry costs about depth × length in prefix strings (built, hashed, kept). Bounded
// in sum, so deep long paths by the ten thousand are a quick refusal rather than minutes
// of CPU and a heap blown in the unpacker; real contexts use a fraction of it. It grows
// with STEVEDORE_CONTEXT_MAX_ENTRIES past the default 65 536.
const pathWorkLimit = (maxEntries: number) => Math.max(2 ** 27, maxEntries * 2048);
const MAX_LINK_HOPS = 40; // Linux gives up (ELOOP) after as many

type Kind = 'file' | 'dir' | 'symlink' | 'hardlink';
// Anything not listed (devices, FIFOs, sparse files, unknown types) is refused.
const KINDS: Partial<Record<string, Kind>> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'dir',
  GNUDumpDir: 'dir',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
};

export function invalid(message: string): ContextError {
  return new ContextError('INVALID_CONTEXT', `build context refused: ${message}`);
}

/** What one upload may expand to; the checks run in the unpacker's child process. */
export interface UnpackLimits {
  /** Sum of file sizes, and length of the decompressed tar stream. */
  maxExpandedBytes: number;
  maxEntries: number;
  /** What is left of the tenant's quota: a second bound on the sum of file sizes. */
  budgetBytes?: number;
}

export function overExpanded(limits: UnpackLimits): ContextError {
  return new ContextError(
    'CONTEXT_TOO_LARGE',
    `build context unpacks to more than ${limits.maxExpandedBytes} bytes (STEVEDORE_CONTEXT_MAX_EXPANDED_BYTES)`,
  );
}

/** Components of an archive path; refuses what could point outside the context. */
function components(name: string, what: string): string[] {
  if (name.includes('\0')) throw invalid(`${what} ${JSON.stringify(name)} contains a NUL byte`);
  if (Buffer.byteLength(name) > MAX_PATH_BYTES)
    throw invalid(`${what} ${JSON.stringify(name.slice(0, 64))}… is longer than ${MAX_PATH_BYTES} bytes`);
  if (name.startsWith('/')) throw invalid(`${what} ${JSON.stringify(name)} is absolute`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw invalid(`${what} ${JSON.stringify(name)} contains '..'`);
  if (parts.length > MAX_DEPTH) throw invalid(`${what} ${JSON.stringify(name)} is nested deeper than ${MAX_DEPTH}`);
  if (parts.some((p) => Buffer.byteLength(p) > MAX_NAME_BYTES))
    throw invalid(`${what} ${JSON.stringify(name)} has a name longer than ${MAX_NAME_BYTES} bytes`);
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
export class EntryPolicy {
  private entries = 0;
  private pathWork = 0;
  private unpackedBytes = 0;
  private readonly seen = new Set<string>(); // every path, with the parents it implies
  private readonly files = new Set<string>(); // regular files: the only allowed hard-link targets
  private readonly symlinks = new Map<string, string>();

  constructor(private readonly limits: UnpackLimits) {}

  /** Sum of the file sizes accepted so far: the disk the tree takes, as charged to a quota. */
  get expandedBytes(): number {
    return this.unpackedBytes;
  }

  get entryCount(): number {
    return this.entries;
  }

  /** Regular files (and hard links to them) in the tree as it will be unpacked. */
  get fileCount(): number {
    return this.files.size;
  }

  check(entry: Pick<ReadEntry, 'path' | 'type' | 'linkpath' | 'size'>): void {
    const name = JSON.stringify(entry.path);
    if (++this.entries > this.limits.maxEntries)
      throw new ContextError(
        'CONTEXT_TOO_LARGE',
        `build context has more than ${this.limits.maxEntries} entries (STEVEDORE_CONTEXT_MAX_ENTRIES)`,
      );
    const kind = KINDS[entry.type];
    if (!kind) throw invalid(`${name} has entry type ${entry.type}; only files, directories and links are allowed`);
    const parts = components(entry.path, 'entry');
    const key = parts.join('/');
    this.pathWork += parts.length * key.length;
    if (this.pathWork > pathWorkLimit(this.limits.maxEntries))
      throw new ContextError(
        'CONTEXT_TOO_LARGE',
        `build context has too many deep, long paths (sum of depth × length over ${pathWorkLimit(this.limits.maxEntries)})`,
      );
    if (parts.length === 0 && kind !== 'dir') throw invalid(`${name} would replace the context root`);
    // A symlink is never written through, nor replaced: node-tar would refuse the
    // first, and the second would invalidate what was checked about earlier entries.
    const through = this.firstSymlink(parts);
    if (through !== undefined) throw invalid(`${name} would be written through the symlink ${JSON.stringify(through)}`);
    if (kind === 'symlink' && this.seen.has(key)) throw invalid(`symlink ${name} would replace an earlier entry`);

    if (kind === 'symlink') this.checkSymlink(parts, entry.linkpath ?? '', name);
    if (kind === 'hardlink') this.checkHardlink(entry.linkpath ?? '', name);
    if (kind === 'file') this.unpackedBytes += entry.size;
    if (this.unpackedBytes > this.limits.maxExpandedBytes) throw overExpanded(this.limits);
    if (this.unpackedBytes > (this.limits.budgetBytes ?? Infinity))
      throw new ContextError(
        'CONTEXT_QUOTA_EXCEEDED',
        `build context would take the tenant past its context quota ` +
          `(STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES): ${this.limits.budgetBytes} bytes are left`,
      );
    if (kind === 'file' || kind === 'hardlink') this.files.add(key);
    else this.files.delete(key);
    if (kind === 'symlink') this.symlinks.set(key, entry.linkpath!);
    for (const prefix of prefixes(parts)) this.seen.add(prefix);
  }

  /** Whole-archive rule: with every symlink known, none may lead outside. */
  finish(): void {
    for (const [key, target] of this.symlinks) {
      if (!staysInside(key.split('/').slice(0, -1), target, this.symlinks))
        throw invalid(`symlink ${JSON.stringify(key)} -> ${JSON.stringify(target)} leads outside the context or loops`);
    }
  }

  private firstSymlink(parts: readonly string[]): string | undefined {
    return prefixes(parts).find((prefix) => this.symlinks.has(prefix));
  }

  private checkSymlink(parts: string[], target: string, name: string): void {
    const shown = `symlink ${name} -> ${JSON.stringify(target)}`;
    if (target === '' || target.includes('\0')) throw invalid(`${shown} has an empty or malformed target`);
    if (Buffer.byteLength(target) > MAX_PATH_BYTES) throw invalid(`${shown} has a target longer than ${MAX_PATH_BYTES} bytes`);
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
