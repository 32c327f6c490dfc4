import { posix } from 'node:path';
import type { Descriptor, RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-errors.js';
import type { RegistryHttp } from './registry-http.js';
import { registryBlobStreamer, scanLayer, type BlobStreamFetcher, type LayerScan } from './tar-stream-reader.js';

import { cachePaths, largestFiles, lookup, put, type CachePath, type Drop, type FsNode } from '../../analysis/image/layer-tree.js';
import { secretsIn, type ImageConfig, type SecretFinding } from '../../analysis/image/config-secrets.js';

export { registryBlobStreamer, type BlobStreamFetcher } from './tar-stream-reader.js';

export type { CacheKind } from '../../analysis/image/layer-tree.js';
export { looksSecret } from '../../analysis/image/config-secrets.js';

export interface LayerAnalysis {
  digest: string;
  /** Compressed, as in the manifest. */
  size_bytes: number;
  created_by: string | null;
  /** Non-directory entries new at their path / replacing something already there. */
  files_added: number;
  files_modified: number;
  /** Whiteouts (`.wh.<name>`, and opaque `.wh..wh..opq` markers) that removed something from lower layers. */
  files_removed: number;
  /** Sum of the sizes of the regular files in the layer. */
  bytes_added: number;
}

export interface ImageAnalysis {
  /** Compressed layers + config, as pulled. */
  size_bytes: number;
  /** Sum of the layers' tar streams. */
  uncompressed_bytes: number;
  /** dive's score: 0..1, 1 when no path is written twice or deleted. */
  efficiency: number;
  wasted_bytes: number;
  /** A ratio (0..1) like dive's WastedUserPercent, despite the name. */
  user_wasted_percent: number;
  layers: LayerAnalysis[];
  largest_files: { path: string; size_bytes: number; layer_digest: string }[];
  cache_paths: CachePath[];
  secrets_in_history: SecretFinding[];
}

export interface AnalyzeOptions {
  /** How many of the final filesystem's largest files to list (default 20). */
  largestFiles?: number;
  signal?: AbortSignal;
  /** Where layer bytes come from; by default `registryBlobStreamer` over the client's own RegistryHttp session. */
  fetchBlobStream?: BlobStreamFetcher;
  /** Layers streamed at once (default 3); they are merged in order afterwards. */
  concurrency?: number;
}

/**
 * dive-style analysis of a single-platform image manifest (resolve indexes with
 * ImageInspector first), streaming every layer from the registry: nothing is unpacked
 * or held whole, only each layer's list of entries.
 */
export async function analyzeImage(
  client: RegistryClient,
  repository: string,
  manifestDigest: string,
  options: AnalyzeOptions = {},
): Promise<ImageAnalysis> {
  const manifest = await client.getManifest(repository, manifestDigest);
  const { config: configDescriptor, layers = [], manifests } = manifest.json;
  if (manifests || !configDescriptor) throw new RegistryError('protocol', `${manifestDigest} is not a single-platform image manifest`);
  const config = await client.getJsonBlob<ImageConfig>(repository, configDescriptor.digest);
  options.signal?.throwIfAborted();
  const fetchBlob = options.fetchBlobStream ?? registryBlobStreamer(sessionOf(client));
  const scans = await scanAll(layers, options.concurrency ?? 3, options.signal, async (layer, signal) =>
    scanLayer(await fetchBlob(repository, layer.digest, signal), layer, signal),
  );

  // efficiency is dive's (filetree.Efficiency): each visit of a path costs its size, a
  // visit being a copy written or a deletion (costing what it removes); the score is
  // Σ(smallest visit per path) / Σ(all visits), so a file added then deleted scores 1/2.
  // Unlike dive, which skips opaque markers and charges a deleted directory to the
  // directory's own path (where a single visit costs nothing), each removed file is charged.
  const minByPath = new Map<string, number>();
  let minimum = 0;
  let discovered = 0;
  // wasted_bytes is what could be saved: every byte written for a path except its final
  // copy (all of them when it is gone). dive's WastedBytes instead sums every visit of a
  // path seen twice, final copy and deletions included. The user share counts wasted
  // copies in layers after the base one (what the Dockerfile wrote) over all bytes
  // written; dive divides all its waste by the bytes of the non-base layers.
  let wasted = 0;
  let userWasted = 0;
  let written = 0;
  const root: FsNode = { size: 0, layer: -1, children: new Map() };
  const drop: Drop = (node, deleted) => {
    if (node.children) return node.children.forEach((child) => drop(child, deleted));
    wasted += node.size;
    if (node.layer > 0) userWasted += node.size;
    if (deleted) discovered += node.size;
  };

  const analyses: LayerAnalysis[] = [];
  const createdBy = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? null);
  scans.forEach((scan, index) => {
    const stats: LayerAnalysis = {
      digest: layers[index]!.digest,
      size_bytes: layers[index]!.size,
      created_by: createdBy[index] ?? null,
      files_added: 0,
      files_modified: 0,
      files_removed: 0,
      bytes_added: 0,
    };
    // Whiteouts hide what the layers below hold, never what this layer adds, so they go first.
    for (const dir of scan.opaques) {
      const node = lookup(root, dir);
      if (!node?.children?.size) continue;
      node.children.forEach((child) => drop(child, true));
      node.children.clear();
      stats.files_removed++;
    }
    for (const path of scan.whiteouts) {
      const parent = lookup(root, posix.dirname(path));
      const node = parent?.children?.get(posix.basename(path));
      if (!node) continue;
      parent!.children!.delete(posix.basename(path));
      drop(node, true);
      stats.files_removed++;
    }
    for (const add of scan.adds) {
      const replaced = put(root, add.path, add.dir ? undefined : { size: add.size, layer: index }, drop);
      if (add.dir) continue;
      if (replaced) stats.files_modified++;
      else stats.files_added++;
      stats.bytes_added += add.size;
      const min = minByPath.get(add.path);
      if (min === undefined || add.size < min) {
        minimum += add.size - (min ?? 0);
        minByPath.set(add.path, add.size);
      }
      discovered += add.size;
    }
    written += stats.bytes_added;
    analyses.push(stats);
  });

  return {
    size_bytes: configDescriptor.size + layers.reduce((sum, l) => sum + l.size, 0),
    uncompressed_bytes: scans.reduce((sum, s) => sum + s.uncompressed, 0),
    efficiency: discovered === 0 ? 1 : minimum / discovered,
    wasted_bytes: wasted,
    user_wasted_percent: written === 0 ? 0 : userWasted / written,
    layers: analyses,
    largest_files: largestFiles(root, options.largestFiles ?? 20).map((f) => ({
      path: f.path,
      size_bytes: f.size,
      layer_digest: layers[f.layer]!.digest,
    })),
    cache_paths: cachePaths(root),
    secrets_in_history: secretsIn(config),
  };
}

/** The client's own session, so layer GETs share its credentials, scheme and cached tokens. */
function sessionOf(client: RegistryClient): RegistryHttp {
  return client.session;
}

/** Streams layers a few at a time; the first failure cancels the others. */
export async function scanAll<T = LayerScan>(
  layers: Descriptor[],
  concurrency: number,
  outer: AbortSignal | undefined,
  scan: (layer: Descriptor, signal: AbortSignal) => Promise<T>,
): Promise<T[]> {
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  const results: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < layers.length) {
      signal.throwIfAborted();
      const index = next++;
      results[index] = await scan(layers[index]!, signal);
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, layers.length)) }, worker));
  } catch (err) {
    stop.abort();
    throw outer?.aborted ? outer.reason : err;
  }
  return results;
}
