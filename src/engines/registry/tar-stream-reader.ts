import { createHash, getHashes } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { assertDigest, assertRepository } from '../../oci/references.js';
import { RegistryError } from './registry-errors.js';
import type { RegistryHttp } from './registry-http.js';

/*
 * Layer blobs as streams: fetched through RegistryHttp, decompressed with zlib and read
 * as tar one header at a time, so an image of any size is analysed in a few chunks of
 * memory and nothing touches the disk.
 */

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

export interface TarEntry {
  /** As stored (ustar prefix, GNU long name or PAX path applied), not normalised. */
  path: string;
  type: TarEntryType;
  /** Content bytes: 0 for everything but regular files. */
  size: number;
  linkpath: string;
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

/** The entries of a tar stream (ustar, GNU long names, PAX), read as the bytes arrive. */
export async function* readTarEntries(source: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
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
    yield {
      path: meta.path ?? (prefix ? `${prefix}/${name}` : name),
      type,
      size: type === 'file' ? bodySize : 0,
      linkpath: meta.linkpath ?? cstring(block, 157, 100),
    };
    await bytes.skip(meta.size !== undefined ? Math.ceil(bodySize / BLOCK) * BLOCK : padded);
  }
  await bytes.drain();
}

export interface LayerBlob {
  mediaType: string;
  digest: string;
  size: number;
}

function decompressor(mediaType: string): Transform {
  if (/[.+]gzip$/.test(mediaType)) return zlib.createGunzip();
  // Looked up, not imported by name: Node 22 before 22.15 has no zstd, and the module must still load there.
  const zstd = (zlib as Partial<typeof zlib>).createZstdDecompress;
  if (/[.+]zstd$/.test(mediaType)) {
    if (!zstd) throw new RegistryError('protocol', `zstd layers need Node 22.15 or later (this is ${process.version})`);
    return zstd();
  }
  if (/[.]tar$/.test(mediaType)) return new PassThrough();
  throw new RegistryError('protocol', `layer media type ${mediaType} is not a tar layer`);
}

/**
 * Reads one layer blob as it arrives: decompresses it by media type, hands each tar
 * entry to `onEntry` and checks size and digest over the compressed bytes at the end.
 * Backpressure runs from the tar reader to the socket, so memory stays at a few
 * chunks whatever the layer's size. Answers the uncompressed (tar) byte count.
 */
export async function readLayerStream(
  body: Readable | ReadableStream<Uint8Array>,
  blob: LayerBlob,
  onEntry: (entry: TarEntry) => void,
  signal?: AbortSignal,
): Promise<number> {
  const source = body instanceof Readable ? body : Readable.fromWeb(body);
  const algorithm = blob.digest.split(':')[0]!;
  const hash = getHashes().includes(algorithm) ? createHash(algorithm) : undefined;
  let compressed = 0;
  let uncompressed = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash?.update(chunk);
      compressed += chunk.length;
      // A registry that sends more than the descriptor said is cut off here, while the body
      // streams (issue 14), not after it has been read to its end, if it has one.
      if (compressed > blob.size)
        return done(
          new RegistryError('protocol', `layer ${blob.digest} is longer than the ${blob.size} bytes its descriptor says (stopped reading)`),
        );
      done(null, chunk);
    },
  });
  async function* counted(chunks: AsyncIterable<Buffer>) {
    for await (const chunk of chunks) {
      uncompressed += chunk.length;
      yield chunk;
    }
  }
  try {
    await pipeline(
      source,
      tap,
      decompressor(blob.mediaType),
      async (tar: AsyncIterable<Buffer>) => {
        for await (const entry of readTarEntries(counted(tar))) onEntry(entry);
      },
      { signal },
    );
  } catch (err) {
    if (err instanceof TarFormatError || /^(Z|ZSTD)_/.test((err as { code?: string }).code ?? ''))
      throw new RegistryError('protocol', `layer ${blob.digest}: ${(err as Error).message}`);
    throw err;
  }
  if (compressed !== blob.size)
    throw new RegistryError('protocol', `layer ${blob.digest} is ${compressed} bytes, its descriptor says ${blob.size}`);
  if (hash && `${algorithm}:${hash.digest('hex')}` !== blob.digest)
    throw new RegistryError('protocol', `layer ${blob.digest} does not match its digest`);
  return uncompressed;
}

/** What one layer's tar says, before it is stacked on the layers below. */
export interface LayerScan {
  adds: { path: string; size: number; dir: boolean }[];
  whiteouts: string[];
  opaques: string[];
  uncompressed: number;
}

/** Reads a layer blob into its entries, whiteouts (`.wh.<name>`) and opaque directories (`.wh..wh..opq`). */
export async function scanLayer(body: Readable | ReadableStream<Uint8Array>, blob: LayerBlob, signal?: AbortSignal): Promise<LayerScan> {
  const scan: LayerScan = { adds: [], whiteouts: [], opaques: [], uncompressed: 0 };
  scan.uncompressed = await readLayerStream(body, blob, (entry) => record(scan, entry), signal);
  return scan;
}

/** Paths become absolute and normalised ("./a/b/" is /a/b); whiteouts name what they hide. */
function record(scan: LayerScan, entry: TarEntry): void {
  const path = posix.normalize(`/${entry.path}`).replace(/\/+$/, '');
  if (!path) return; // the layer root itself
  const name = posix.basename(path);
  const dir = posix.dirname(path).replace(/^\/$/, '');
  if (name === '.wh..wh..opq') scan.opaques.push(dir);
  else if (name.startsWith('.wh.')) scan.whiteouts.push(`${dir}/${name.slice(4)}`);
  else scan.adds.push({ path, size: entry.size, dir: entry.type === 'directory' });
}

/** A layer blob's bytes as they arrive, from a fetch body or a Node stream. */
export type BlobStreamFetcher = (
  repository: string,
  digest: string,
  signal?: AbortSignal,
) => Promise<ReadableStream<Uint8Array> | Readable>;

/** Big layers over slow links: the whole body must arrive within this (RegistryHttp's timeout covers the body). */
const LAYER_TIMEOUT_MS = 60 * 60_000;

/**
 * Layer GETs through RegistryHttp, so they get the same auth dance (Basic, or a Bearer
 * token per scope) as RegistryClient; the body is handed over unread.
 */
export function registryBlobStreamer(http: RegistryHttp): BlobStreamFetcher {
  return async (repository, digest) => {
    assertRepository(repository);
    assertDigest(digest);
    const res = await http.request('GET', `/v2/${repository}/blobs/${digest}`, {
      scope: `repository:${repository}:pull`,
      timeoutMs: LAYER_TIMEOUT_MS,
    });
    if (res.ok && res.body) return res.body;
    await res.body?.cancel();
    const kind =
      res.status === 404
        ? 'not_found'
        : res.status === 401 || res.status === 403
          ? 'unauthorized'
          : res.status >= 500
            ? 'unavailable'
            : 'protocol';
    throw new RegistryError(kind, `GET blob ${digest} from ${http.host}/${repository}: registry answered ${res.status}`, res.status);
  };
}
