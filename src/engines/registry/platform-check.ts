import type { Readable } from 'node:stream';
import { ELF_HEAD_BYTES, readElfHeader, type ElfHeader } from '../../analysis/image/elf-header.js';
import { checkFilesystem, type ElfLayer } from '../../analysis/image/platform-check.js';
import type { ImageConfig } from '../../analysis/image/config-secrets.js';
import { scanAll } from './image-analysis.js';
import type { RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-errors.js';
import { entryPath, readLayerStream, record, registryBlobStreamer, type BlobStreamFetcher, type LayerBlob } from './tar-stream-reader.js';

/*
 * The platform honesty check's adapter: streams an image's layers (as image analysis
 * does, nothing unpacked, only the first 64 bytes of each regular file read) and hands
 * the entries and ELF headers to analysis/image/platform-check.ts.
 */

export interface PlatformMismatch {
  path: string;
  machine: string;
  layer_digest: string;
  /** The history entry (Dockerfile instruction) that made the layer. */
  created_by: string | null;
}

export interface PlatformCheck {
  ok: boolean;
  platform: string;
  manifest_digest: string;
  files_checked: number;
  files_exempt: number;
  mismatches_total: number;
  /** The first 50, by layer then path. */
  mismatches: PlatformMismatch[];
}

export interface PlatformCheckOptions {
  signal?: AbortSignal;
  fetchBlobStream?: BlobStreamFetcher;
  /** Layers streamed at once (default 3). */
  concurrency?: number;
  /** How many mismatches to list (default 50); the total is always counted. */
  limit?: number;
}

type PlatformConfig = ImageConfig & { os?: string; architecture?: string; variant?: string };

/**
 * Checks one single-platform manifest against `platform` (by default the platform its
 * config names): every ELF executable or shared object of the final filesystem must be
 * for that architecture, except what platform-rules.ts exempts.
 */
export async function checkPlatform(
  client: RegistryClient,
  manifest: { repository: string; digest: string },
  platform?: string,
  options: PlatformCheckOptions = {},
): Promise<PlatformCheck> {
  const { repository } = manifest;
  const fetched = await client.getManifest(repository, manifest.digest);
  const { config: configDescriptor, layers = [], manifests } = fetched.json;
  if (manifests || !configDescriptor) throw new RegistryError('protocol', `${manifest.digest} is not a single-platform image manifest`);
  const config = await client.getJsonBlob<PlatformConfig>(repository, configDescriptor.digest);
  const wanted = platform ?? [config.os ?? 'linux', config.architecture ?? 'amd64', config.variant].filter(Boolean).join('/');
  const fetchBlob = options.fetchBlobStream ?? registryBlobStreamer(client.session);
  const scans = await scanAll(layers, options.concurrency ?? 3, options.signal, async (layer, signal) =>
    scanElfLayer(await fetchBlob(repository, layer.digest, signal), layer, signal),
  );
  const result = checkFilesystem(scans, wanted, options.limit ?? 50);
  const createdBy = (config.history ?? []).filter((h) => !h.empty_layer).map((h) => h.created_by ?? null);
  return {
    ok: result.mismatches_total === 0,
    platform: wanted,
    manifest_digest: fetched.digest,
    files_checked: result.files_checked,
    files_exempt: result.files_exempt,
    mismatches_total: result.mismatches_total,
    mismatches: result.mismatches.map((m) => ({
      path: m.path,
      machine: m.machine,
      layer_digest: layers[m.layer]!.digest,
      created_by: createdBy[m.layer] ?? null,
    })),
  };
}

/** One layer's entries, with the ELF header of each regular file that has one (and of hardlinks to it). */
export async function scanElfLayer(body: Readable | ReadableStream<Uint8Array>, blob: LayerBlob, signal?: AbortSignal): Promise<ElfLayer> {
  const scan: ElfLayer & { adds: { path: string; size: number; dir: boolean }[] } = {
    adds: [],
    whiteouts: [],
    opaques: [],
    elf: new Map(),
  };
  await readLayerStream(
    body,
    blob,
    (entry) => {
      const path = record(scan, entry);
      if (!path) return;
      let header: ElfHeader | undefined;
      if (entry.type === 'file' && entry.head) header = readElfHeader(entry.head);
      // A hardlink shares its target's bytes; OCI layers hardlink only within themselves.
      else if (entry.type === 'hardlink') header = scan.elf.get(entryPath(entry.linkpath));
      if (header) scan.elf.set(path, header);
    },
    signal,
    ELF_HEAD_BYTES,
  );
  return scan;
}

/**
 * Every platform of an image: each platform manifest of an index (attestation manifests,
 * platform "unknown/unknown", skipped), checked one after another; a single manifest alone.
 */
export async function checkImagePlatforms(
  client: RegistryClient,
  image: { repository: string; digest: string },
  options: PlatformCheckOptions = {},
): Promise<PlatformCheck[]> {
  const top = await client.getManifest(image.repository, image.digest);
  if (!top.json.manifests) return [await checkPlatform(client, image, undefined, options)];
  const results: PlatformCheck[] = [];
  for (const d of top.json.manifests) {
    if (!d.platform || d.platform.os === 'unknown') continue;
    const platform = [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/');
    results.push(await checkPlatform(client, { repository: image.repository, digest: d.digest }, platform, options));
  }
  return results;
}
