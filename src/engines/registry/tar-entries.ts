/*
 * A tar stream's entries (ustar, GNU long names, PAX), read as the bytes arrive: headers
 * are read exactly, bodies skipped, so a body is never held — only, when asked, its
 * first few bytes (the platform check's ELF headers).
 */

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  /** As stored (ustar prefix, GNU long name or PAX path applied), not normalised. */
  path: string;
  type: TarEntryType;
  /** Content bytes: 0 for everything but regular files. */
  size: number;
  linkpath: string;
  /**
   * The first `min(headBytes, size)` bytes of a regular file when readTarEntries was asked
   * for them: a view into the stream's current chunk, valid until the next entry.
   */
  head?: Buffer;
}

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

const BLOCK = 512;
/** PAX and GNU long-name records hold a path or two; a bigger one is not a layer we trust. */
const MAX_META_BYTES = 1024 * 1024;
const EMPTY = Buffer.alloc(0);

/**
 * Pull-based bytes over an async iterator: exact reads for headers and skips for
 * entry bodies, so a body is never held, only the chunk being passed over.
 */
class ByteSource {
  private pending: Buffer = EMPTY;
  private ended = false;

  constructor(private readonly chunks: AsyncIterator<Uint8Array>) {}

  private async more(): Promise<boolean> {
    if (this.ended) return false;
    const next = await this.chunks.next();
    if (next.done) return !(this.ended = true);
    const chunk = Buffer.isBuffer(next.value) ? next.value : Buffer.from(next.value.buffer, next.value.byteOffset, next.value.byteLength);
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes, or undefined at a clean end of input. */
  async read(n: number): Promise<Buffer | undefined> {
    while (this.pending.length < n) {
      if (await this.more()) continue;
      if (this.pending.length === 0) return undefined;
      throw new TarFormatError('tar stream ends inside a header or metadata record');
    }
    const out = this.pending.subarray(0, n);
    this.pending = this.pending.subarray(n);
    return out;
  }

  /** Exactly n bytes of an entry body, gathered chunk by chunk and joined once (a body can be megabytes). */
  async readBody(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      if (this.pending.length === 0 && !(await this.more())) throw new TarFormatError('tar stream ends inside an entry');
      const k = Math.min(n - have, this.pending.length);
      parts.push(this.pending.subarray(0, k));
      this.pending = this.pending.subarray(k);
      have += k;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, n);
  }

  async skip(n: number): Promise<void> {
    while (n > 0) {
      if (this.pending.length === 0 && !(await this.more())) throw new TarFormatError('tar stream ends inside an entry');
      const k = Math.min(n, this.pending.length);
      this.pending = this.pending.subarray(k);
      n -= k;
    }
  }

  /** Reads to the end: the zero padding after the end marker still counts toward the blob's digest. */
  async drain(): Promise<void> {
    this.pending = EMPTY;
    while (await this.more()) this.pending = EMPTY;
  }
}

const cstring = (buf: Buffer, start = 0, length = buf.length) => {
  const field = buf.subarray(start, start + length);
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
};

/** Octal, or GNU base-256 (high bit set) for sizes of 8 GiB and more. */
function numeric(buf: Buffer, start: number, length: number): number {
  if (buf[start]! & 0x80) {
    let value = buf[start]! & 0x7f;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + buf[i]!;
    return value;
  }
  const text = cstring(buf, start, length).trim();
  return text ? parseInt(text, 8) : 0;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  S: 'file',
  '1': 'hardlink',
  '2': 'symlink',
  '5': 'directory',
};

/** `<length> key=value\n` records; lengths count bytes, so this walks the buffer, not a string. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  for (let pos = 0; pos < data.length;) {
    const space = data.indexOf(0x20, pos);
    const length = space < 0 ? NaN : Number(data.subarray(pos, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0) break;
    const record = data.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += length;
  }
  return out;
}

export interface TarReadOptions {
  /**
   * Read this many bytes of each regular file's body into `head` (0: none), or as many as
   * the function answers for that entry (the optimizer reads a few whole files). The rest is
   * skipped unread.
   */
  headBytes?: number | ((entry: { path: string; size: number }) => number);
}

/** The entries of a tar stream (ustar, GNU long names, PAX), read as the bytes arrive. */
export async function* readTarEntries(source: AsyncIterable<Uint8Array>, options: TarReadOptions = {}): AsyncGenerator<TarEntry> {
  const headBytes = options.headBytes ?? 0;
  const bytes = new ByteSource(source[Symbol.asyncIterator]());
  const global: Record<string, string> = {};
  let next: Record<string, string> = {};
  for (;;) {
    const block = await bytes.read(BLOCK);
    if (!block || block.every((b) => b === 0)) break; // end marker (some writers omit it)
    let sum = 0;
    for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
    if (sum !== numeric(block, 148, 8)) throw new TarFormatError('tar header checksum mismatch (not a tar stream, or corrupt)');
    const flag = String.fromCharCode(block[156]!);
    const size = numeric(block, 124, 12);
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === 'L' || flag === 'K' || flag === 'x' || flag === 'g') {
      if (size > MAX_META_BYTES) throw new TarFormatError(`tar metadata record of ${size} bytes`);
      const data = Buffer.from((await bytes.read(padded)) ?? EMPTY).subarray(0, size);
      if (data.length < size) throw new TarFormatError('tar stream ends inside a metadata record');
      if (flag === 'L') next.path = cstring(data);
      else if (flag === 'K') next.linkpath = cstring(data);
      else Object.assign(flag === 'x' ? next : global, parsePax(data));
      continue;
    }
    const meta = { ...global, ...next };
    next = {};
    const ustar = block.subarray(257, 262).toString('ascii') === 'ustar';
    const prefix = ustar ? cstring(block, 345, 155) : '';
    const name = cstring(block, 0, 100);
    const type = TYPES[flag] ?? 'other';
    const bodySize = meta.size !== undefined ? Number(meta.size) : size;
    const path = meta.path ?? (prefix ? `${prefix}/${name}` : name);
    const limit = type !== 'file' ? 0 : typeof headBytes === 'number' ? headBytes : headBytes({ path, size: bodySize });
    const want = Math.max(0, Math.min(limit, bodySize));
    const head = want > 0 ? await bytes.readBody(want) : undefined;
    yield {
      path,
      type,
      size: type === 'file' ? bodySize : 0,
      linkpath: meta.linkpath ?? cstring(block, 157, 100),
      ...(head ? { head } : {}),
    };
    await bytes.skip((meta.size !== undefined ? Math.ceil(bodySize / BLOCK) * BLOCK : padded) - want);
  }
  await bytes.drain();
}
