import { createHash, getHashes } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setImmediate as nextTurn } from 'node:timers/promises';
import * as zlib from 'node:zlib';
import { assertDigest, assertRepository } from '../../oci/references.js';
import { RegistryError } from './registry-errors.js';
import type { RegistryHttp } from './registry-http.js';

/*
 * Layer blobs as streams: fetched through RegistryHttp, decompressed with zlib and read
 * as tar one header at a time, so an image of any size is analysed in a few chunks of
 * memory and nothing touches the disk.
 */

import { readTarEntries, TarFormatError, type TarEntry, type TarReadOptions } from './tar-entries.js';

export { readTarEntries, TarFormatError, type TarEntry, type TarEntryType } from './tar-entries.js';

/** Entries handled between yields to the event loop: a chunk of tiny files is thousands of them. */
const ENTRIES_PER_TURN = 1000;

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
  /** Bytes of each regular file handed over in `entry.head` (the platform check's ELF headers), or a choice per entry. */
  headBytes: TarReadOptions['headBytes'] = 0,
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
        let handled = 0;
        for await (const entry of readTarEntries(counted(tar), { headBytes })) {
          onEntry(entry);
          if (++handled % ENTRIES_PER_TURN === 0) await nextTurn();
        }
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

/** A tar path made absolute and normalised ("./a/b/" is /a/b; the layer root is ""). */
export const entryPath = (path: string) => posix.normalize(`/${path}`).replace(/\/+$/, '');

/** Whiteouts name what they hide. Answers the path of an entry added (not a whiteout, not the root). */
export function record(scan: Omit<LayerScan, 'uncompressed'>, entry: TarEntry): string | undefined {
  const path = entryPath(entry.path);
  if (!path) return undefined; // the layer root itself
  const name = posix.basename(path);
  const dir = posix.dirname(path).replace(/^\/$/, '');
  if (name === '.wh..wh..opq') scan.opaques.push(dir);
  else if (name.startsWith('.wh.')) scan.whiteouts.push(`${dir}/${name.slice(4)}`);
  else {
    scan.adds.push({ path, size: entry.size, dir: entry.type === 'directory' });
    return path;
  }
  return undefined;
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
