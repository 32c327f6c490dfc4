import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Parser, Unpack, type ReadEntry } from 'tar';
import { ContextError, EntryPolicy, invalid, MAX_DEPTH, overExpanded, type UnpackLimits } from './tar-entry-policy.js';

/**
 * Checks and unpacks one uploaded context (a file already on disk). Runs in the
 * unpacker's child process (unpack-child.ts), never on the API's event loop: inflating
 * and parsing take CPU in proportion to what the upload expands to, not to its size.
 */
export interface UnpackRequest {
  /** The upload as received (tar or gzip-compressed tar). */
  file: string;
  /** An empty directory the tree is unpacked into. */
  dest: string;
  limits: UnpackLimits;
}

export interface UnpackResult {
  /** Sum of the file sizes unpacked. */
  expandedBytes: number;
  entries: number;
  /** Regular files in the unpacked tree. */
  files: number;
}

const SLICE = 64 * 1024;
// tar pads its last record with zeros (10 KiB by default, more with a large blocking
// factor); anything beyond this after the end-of-archive marker is not a tar's padding.
export const MAX_TRAILING_BYTES = 1024 * 1024;
// Pax headers and GNU long names; longer ones are refused ('ignoredEntry'), not read.
const MAX_META_ENTRY_BYTES = 64 * 1024;
// Failures of this machine, not of the upload: they must not be answered with a 400.
export const SERVER_SIDE = new Set(['ENOSPC', 'EDQUOT', 'EIO', 'EMFILE', 'ENFILE', 'ENOMEM', 'EROFS']);

/**
 * node-tar keeps accepting writes after the end-of-archive blocks and appends each one
 * to a growing buffer (a full copy per write), which made a tar followed by a long
 * tail (or 2 GiB of zeros) take minutes of CPU. It exposes no event that fires in
 * time (its 'eof' waits for pending entries), so its own flag is read; if a node-tar
 * update renames it, this fails at load, loudly, rather than going quadratic again.
 */
const SAW_EOF = Object.getOwnPropertySymbols(new Parser()).find((s) => s.description === 'sawEOF');
if (!SAW_EOF) throw new Error('node-tar no longer has the sawEOF flag that upload-unpacker.ts reads');

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string' ? err.code : '';
}

/** The upload's tar stream: decompressed (and counted) by us, so node-tar never inflates. */
async function tarStream(file: string): Promise<Readable> {
  const handle = await open(file, 'r');
  const head = Buffer.alloc(2);
  try {
    await handle.read(head, 0, 2, 0);
  } finally {
    await handle.close();
  }
  const raw = createReadStream(file, { highWaterMark: SLICE });
  if (!(head[0] === 0x1f && head[1] === 0x8b)) return raw;
  const gunzip = createGunzip({ chunkSize: SLICE });
  raw.on('error', (err) => gunzip.destroy(err));
  gunzip.on('close', () => raw.destroy());
  return raw.pipe(gunzip);
}

/**
 * Feeds the tar stream to a node-tar Parser (or Unpack) in slices, with the limits no
 * parser option gives: expanded bytes, and at most MAX_TRAILING_BYTES after the end of
 * the archive, which are counted and dropped, never handed to the parser.
 */
async function feed(parser: Parser, file: string, limits: UnpackLimits): Promise<void> {
  let failure: unknown;
  const finished = new Promise<void>((resolve, reject) => {
    parser.on('error', (err: Error) => {
      failure ??= err;
      reject(err);
    });
    parser.on('end', () => resolve());
  });
  finished.catch(() => undefined);
  const source = await tarStream(file);
  const sawEof = () => (parser as unknown as Record<symbol, boolean>)[SAW_EOF!] === true;
  let expanded = 0;
  let trailing = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (failure) break;
      // A gzip inside the gzip would be inflated by node-tar itself, uncounted.
      if (expanded === 0 && chunk[0] === 0x1f && chunk[1] === 0x8b) throw invalid('the archive is compressed twice');
      expanded += chunk.length;
      if (expanded > limits.maxExpandedBytes) throw overExpanded(limits);
      for (let at = 0; at < chunk.length && !failure; at += SLICE) {
        if (sawEof()) {
          trailing += chunk.length - at;
          break;
        }
        if (!parser.write(chunk.subarray(at, at + SLICE))) await Promise.race([once(parser, 'drain'), finished]);
      }
      if (trailing > MAX_TRAILING_BYTES)
        throw invalid(
          `more than ${MAX_TRAILING_BYTES} bytes follow the end-of-archive marker; it is not a tar archive, or has data appended`,
        );
    }
    if (!failure) parser.end();
    await finished;
  } finally {
    source.destroy();
  }
}

/** First pass: reads every header (writing nothing) so a bad entry is refused before extraction. */
async function inspect(file: string, policy: EntryPolicy, limits: UnpackLimits): Promise<void> {
  // strict: a checksum failure or truncated archive is an error, not a skipped entry.
  const parser = new Parser({ strict: true, zstd: false, brotli: false, maxMetaEntrySize: MAX_META_ENTRY_BYTES });
  let refusal: Error | undefined;
  const refuse = (err: Error) => {
    refusal ??= err;
    parser.abort(new Error(err.message));
  };
  parser.on('entry', (entry: ReadEntry) => {
    try {
      if (!refusal) policy.check(entry);
    } catch (err) {
      refuse(err as Error);
    }
    entry.resume();
  });
  // Entries of types node-tar does not know (and oversized headers) are skipped by
  // it, silently; here they refuse the upload.
  parser.on('ignoredEntry', (entry: ReadEntry) =>
    refuse(invalid(`${JSON.stringify(entry.path)} has entry type ${entry.type}, which is not supported`)),
  );
  try {
    await feed(parser, file, limits);
  } catch (err) {
    if (refusal) throw refusal;
    if (err instanceof ContextError || SERVER_SIDE.has(errorCode(err))) throw err;
    throw invalid(`not a readable tar archive: ${(err as Error).message}`);
  }
  if (refusal) throw refusal;
  policy.finish();
}

/**
 * Second pass, after inspect() accepted every entry and the archive as a whole.
 * strict turns any refusal of node-tar's own (its symlink and path checks stay on:
 * preservePaths false) into an error, never a silently skipped entry.
 */
async function extract(file: string, dest: string, limits: UnpackLimits): Promise<void> {
  const unpack = new Unpack({
    cwd: dest,
    strict: true,
    preservePaths: false,
    preserveOwner: false,
    chmod: false,
    zstd: false,
    brotli: false,
    maxDepth: MAX_DEPTH,
    maxMetaEntrySize: MAX_META_ENTRY_BYTES,
    // A context is build input: a setuid, setgid or sticky bit in it is never wanted, and
    // a setuid file left on the server's disk is a way up for anyone who can run it.
    filter: (_path, entry) => {
      const e = entry as ReadEntry;
      if (typeof e.mode === 'number') e.mode &= 0o777;
      return true;
    },
  });
  try {
    await feed(unpack, file, limits);
  } catch (err) {
    if (err instanceof ContextError || SERVER_SIDE.has(errorCode(err))) throw err;
    throw invalid(`could not unpack: ${(err as Error).message}`);
  }
}

export async function unpackUpload(request: UnpackRequest): Promise<UnpackResult> {
  const policy = new EntryPolicy(request.limits);
  await inspect(request.file, policy, request.limits);
  await extract(request.file, request.dest, request.limits);
  return { expandedBytes: policy.expandedBytes, entries: policy.entryCount, files: policy.fileCount };
}
