import { FileTree, isElf, type FileType, type LayerEntries } from '../../analysis/image/file-tree.js';
import type { ImageRunConfig } from '../../analysis/optimize/stage-split.js';
import { scanAll } from './image-analysis.js';
import type { Descriptor, RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-errors.js';
import { entryPath, readLayerStream, registryBlobStreamer, type BlobStreamFetcher } from './tar-stream-reader.js';
import type { TarEntry } from './tar-entries.js';

/**
 * Reads an image's final filesystem from its layers, streamed from the registry as the
 * platform check does: every path with its type and writing layer, the first bytes of
 * each file (ELF header, `#!` line) and, whole, the small text files that say what the
 * package manager owns (dpkg's status and file lists) and where libraries are looked up
 * (ld.so.conf). Bodies of chosen files (ELF programs and libraries) come in a second
 * pass that streams only the layers that hold them.
 */

export interface ImageFiles {
  repository: string;
  manifestDigest: string;
  layers: Descriptor[];
  os: string;
  architecture: string;
  variant?: string;
  config: ImageRunConfig;
  tree: FileTree;
  /** Whole texts of dpkg's database and ld.so.conf, as each layer wrote them: path → versions in layer order. */
  texts: Map<string, { layer: number; text: string }[]>;
}

export interface ReadFilesOptions {
  signal?: AbortSignal;
  /** At most this many entries over all layers (default MAX_IMAGE_ENTRIES). */
  maxEntries?: number;
  fetchBlobStream?: BlobStreamFetcher;
  concurrency?: number;
}

/** Bytes kept of every file's start: an ELF header and a `#!` line fit. */
const HEAD_BYTES = 256;
/** The text files read whole, and the most of them: a hostile image must not fill memory through them. */
const TEXT_FILE = /^\/(var\/lib\/dpkg\/status|var\/lib\/dpkg\/info\/[^/]+\.list|etc\/ld\.so\.conf|etc\/ld\.so\.conf\.d\/[^/]+\.conf)$/;
const MAX_TEXT_FILE_BYTES = 32 * 1024 * 1024;
const MAX_TEXT_BYTES = 128 * 1024 * 1024;
const MAX_BODY_BYTES = 256 * 1024 * 1024;
/**
 * Entries read from all layers together. The tree and everything computed over it live in
 * this process (and its event loop): a hostile image of millions of tiny files is refused
 * here rather than held. Debian with a compiler and Node is about 60 000.
 */
export const MAX_IMAGE_ENTRIES = 500_000;

const TYPES: Record<TarEntry['type'], FileType> = {
  file: 'file',
  hardlink: 'hardlink',
  symlink: 'symlink',
  directory: 'dir',
  other: 'other',
};

export async function readImageFiles(
  client: RegistryClient,
  repository: string,
  manifestDigest: string,
  options: ReadFilesOptions = {},
): Promise<ImageFiles> {
  const manifest = await client.getManifest(repository, manifestDigest);
  const { config: configDescriptor, layers = [], manifests } = manifest.json;
  if (manifests || !configDescriptor) throw new RegistryError('protocol', `${manifestDigest} is not a single-platform image manifest`);
  const config = await client.getJsonBlob<{ os?: string; architecture?: string; variant?: string; config?: ImageRunConfig }>(
    repository,
    configDescriptor.digest,
  );
  const fetchBlob = options.fetchBlobStream ?? registryBlobStreamer(client.session);
  let textBytes = 0;
  let entries = 0;
  const maxEntries = options.maxEntries ?? MAX_IMAGE_ENTRIES;
  const texts = new Map<string, { layer: number; text: string }[]>();
  const scans = await scanAll(layers, options.concurrency ?? 3, options.signal, async (layer, signal) => {
    const scan: LayerEntries & { texts: { path: string; text: string }[] } = { adds: [], whiteouts: [], opaques: [], texts: [] };
    await readLayerStream(
      await fetchBlob(repository, layer.digest, signal),
      layer,
      (entry) => {
        const path = entryPath(entry.path);
        if (!path) return;
        if (++entries > maxEntries) throw new RegistryError('protocol', `the image has more than ${maxEntries} files`);
        const name = path.slice(path.lastIndexOf('/') + 1);
        const dir = path.slice(0, path.lastIndexOf('/'));
        if (name === '.wh..wh..opq') return void scan.opaques.push(dir);
        if (name.startsWith('.wh.')) return void scan.whiteouts.push(`${dir}/${name.slice(4)}`);
        const head = entry.head && (isElf(entry.head) || (entry.head[0] === 0x23 && entry.head[1] === 0x21)) ? entry.head : undefined;
        const link = entry.type === 'hardlink' ? entryPath(entry.linkpath) : entry.linkpath;
        scan.adds.push({
          path,
          type: TYPES[entry.type],
          size: entry.size,
          link,
          head: head ? Buffer.from(head.subarray(0, HEAD_BYTES)) : undefined,
        });
        if (entry.head && TEXT_FILE.test(path) && entry.head.length === entry.size) {
          textBytes += entry.size;
          if (textBytes > MAX_TEXT_BYTES) throw new RegistryError('protocol', 'the package database is larger than the optimizer reads');
          scan.texts.push({ path, text: entry.head.toString('utf8') });
        }
      },
      signal,
      ({ path, size }) => (TEXT_FILE.test(entryPath(path)) && size <= MAX_TEXT_FILE_BYTES ? size : HEAD_BYTES),
    );
    return scan;
  });
  const tree = new FileTree();
  scans.forEach((scan, layer) => {
    tree.apply(scan);
    for (const t of scan.texts) texts.set(t.path, [...(texts.get(t.path) ?? []), { layer, text: t.text }]);
  });
  return {
    repository,
    manifestDigest: manifest.digest,
    layers,
    os: config.os ?? 'linux',
    architecture: config.architecture ?? 'amd64',
    ...(config.variant ? { variant: config.variant } : {}),
    config: config.config ?? {},
    tree,
    texts,
  };
}

/**
 * The whole bodies of some regular files of the final filesystem (paths already resolved,
 * hardlinks followed), streaming only the layers that last wrote them. Files over
 * `maxFileBytes` are left out; the total is capped too.
 */
export async function readFileBodies(
  client: RegistryClient,
  files: ImageFiles,
  paths: string[],
  options: ReadFilesOptions & { maxFileBytes?: number } = {},
): Promise<Map<string, Buffer>> {
  const maxFile = options.maxFileBytes ?? 64 * 1024 * 1024;
  const wanted = new Map<number, Map<string, string>>(); // layer → stored path → path asked for
  let total = 0;
  for (const path of paths) {
    let entry = files.tree.get(path);
    let stored = path;
    if (entry?.type === 'hardlink') entry = files.tree.get((stored = entry.link));
    if (!entry || entry.type !== 'file' || entry.size > maxFile || (total += entry.size) > MAX_BODY_BYTES) continue;
    if (!wanted.has(entry.layer)) wanted.set(entry.layer, new Map());
    wanted.get(entry.layer)!.set(stored, path);
  }
  const fetchBlob = options.fetchBlobStream ?? registryBlobStreamer(client.session);
  const bodies = new Map<string, Buffer>();
  // Two layers can share a digest (an empty layer twice): each descriptor carries its own index.
  const indexed = [...wanted.keys()].map((index) => ({ ...files.layers[index]!, index }));
  await scanAll(indexed, options.concurrency ?? 3, options.signal, async (layer, signal) => {
    const want = wanted.get((layer as (typeof indexed)[number]).index)!;
    await readLayerStream(
      await fetchBlob(files.repository, layer.digest, signal),
      layer,
      (entry) => {
        const asked = want.get(entryPath(entry.path));
        if (asked && entry.head && entry.head.length === entry.size) bodies.set(asked, Buffer.from(entry.head));
      },
      signal,
      ({ path, size }) => (want.has(entryPath(path)) ? size : 0),
    );
  });
  return bodies;
}
