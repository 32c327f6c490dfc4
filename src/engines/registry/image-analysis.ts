import { posix } from 'node:path';
import type { Descriptor, RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-errors.js';
import type { RegistryHttp } from './registry-http.js';
import { registryBlobStreamer, scanLayer, type BlobStreamFetcher, type LayerScan } from './tar-stream-reader.js';

export { registryBlobStreamer, type BlobStreamFetcher } from './tar-stream-reader.js';

export type CacheKind = 'apt-lists' | 'apt-archives' | 'pip-cache' | 'npm-cache' | 'apk-cache' | 'yarn-cache' | 'go-build-cache' | 'other';

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
  cache_paths: { path: string; kind: CacheKind; size_bytes: number }[];
  secrets_in_history: { source: 'env' | 'history' | 'label'; name: string; value: '[redacted]' }[];
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

interface ImageConfig {
  config?: { Env?: string[] | null; Labels?: Record<string, string> | null };
  history?: { created_by?: string; empty_layer?: boolean }[];
}

interface FsNode {
  size: number;
  layer: number;
  children?: Map<string, FsNode>; // set for directories only
}
/** Accounts for a subtree leaving the filesystem: deleted by a whiteout, or superseded. */
type Drop = (node: FsNode, deleted: boolean) => void;

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
async function scanAll(
  layers: Descriptor[],
  concurrency: number,
  outer: AbortSignal | undefined,
  scan: (layer: Descriptor, signal: AbortSignal) => Promise<LayerScan>,
): Promise<LayerScan[]> {
  const stop = new AbortController();
  const signal = outer ? AbortSignal.any([outer, stop.signal]) : stop.signal;
  const results: LayerScan[] = [];
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

function lookup(root: FsNode, path: string): FsNode | undefined {
  let node: FsNode | undefined = root;
  for (const name of path.split('/')) if (name) node = node?.children?.get(name);
  return node;
}

/**
 * Puts a file (or, with no `file`, a directory) at path, making missing parents; what it
 * replaces is dropped as superseded. A directory over a directory keeps its contents.
 * Answers whether something was there already.
 */
function put(root: FsNode, path: string, file: { size: number; layer: number } | undefined, drop: Drop): boolean {
  const names = path.split('/').filter(Boolean);
  let parent = root;
  for (const name of names.slice(0, -1)) {
    let child = parent.children!.get(name);
    if (!child?.children) {
      if (child) drop(child, false);
      parent.children!.set(name, (child = { size: 0, layer: -1, children: new Map() }));
    }
    parent = child;
  }
  const name = names.at(-1)!;
  const old = parent.children!.get(name);
  if (!file && old?.children) return true;
  if (old) drop(old, false);
  parent.children!.set(name, file ? { ...file } : { size: 0, layer: -1, children: new Map() });
  return old !== undefined;
}

function walk(node: FsNode, path: string, visit: (path: string, file: FsNode) => void): void {
  if (!node.children) return visit(path, node);
  node.children.forEach((child, name) => walk(child, `${path}/${name}`, visit));
}

function largestFiles(root: FsNode, count: number): { path: string; size: number; layer: number }[] {
  const top: { path: string; size: number; layer: number }[] = [];
  if (count <= 0) return top;
  walk(root, '', (path, file) => {
    if (file.size === 0 || (top.length === count && file.size <= top[count - 1]!.size)) return;
    const at = top.findIndex((t) => t.size < file.size);
    top.splice(at < 0 ? top.length : at, 0, { path, size: file.size, layer: file.layer });
    top.length = Math.min(top.length, count);
  });
  return top;
}

/** Package-manager and build caches; `~` is /root and every /home/<user>. Specific kinds before `other`. */
const CACHE_DIRS: [string, CacheKind][] = [
  ['/var/lib/apt/lists', 'apt-lists'],
  ['/var/cache/apt/archives', 'apt-archives'],
  ['/var/cache/apk', 'apk-cache'],
  ['~/.cache/pip', 'pip-cache'],
  ['~/.npm', 'npm-cache'],
  ['/usr/local/share/.cache/yarn', 'yarn-cache'],
  ['~/.cache/yarn', 'yarn-cache'],
  ['~/.cache/go-build', 'go-build-cache'],
  ['~/.cache', 'other'],
  ['~/.m2/repository', 'other'],
  ['~/.gradle/caches', 'other'],
  ['~/.cargo/registry', 'other'],
  ['/go/pkg/mod', 'other'],
  ['/var/cache/dnf', 'other'],
  ['/var/cache/yum', 'other'],
  ['/tmp', 'other'],
  ['/var/tmp', 'other'],
];

function cachePaths(root: FsNode): ImageAnalysis['cache_paths'] {
  const homes = ['/root', ...[...(lookup(root, '/home')?.children?.keys() ?? [])].map((user) => `/home/${user}`)];
  const found: ImageAnalysis['cache_paths'] = [];
  for (const [pattern, kind] of CACHE_DIRS) {
    for (const path of pattern.startsWith('~') ? homes.map((home) => home + pattern.slice(1)) : [pattern]) {
      const node = lookup(root, path);
      if (!node?.children) continue;
      let size = 0;
      walk(node, '', (_path, file) => (size += file.size));
      // A generic directory (~/.cache) counts only what the specific kinds did not.
      for (const f of found) if (f.path.startsWith(`${path}/`)) size -= f.size_bytes;
      if (size > 0) found.push({ path, kind, size_bytes: size });
    }
  }
  return found.sort((a, b) => b.size_bytes - a.size_bytes);
}

const SECRET_WORDS = new Set([
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'credential',
  'credentials',
  'auth',
  'apikey',
  'privatekey',
  'accesskey',
  'secretkey',
]);
/** Names that point at a secret rather than hold one (POSTGRES_PASSWORD_FILE=/run/secrets/db, SSH_AUTH_SOCK). */
const REFERENCE_WORDS = new Set(['file', 'path', 'dir', 'sock']);
const SECRET_VALUES: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'private_key'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, 'aws_access_key_id'],
];

/** Word match, not substring: GPG_KEY (a public fingerprint) and image.authors stay out. */
export function looksSecret(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  if (REFERENCE_WORDS.has(words.at(-1) ?? '')) return false;
  return words.some((word, i) => SECRET_WORDS.has(word) || SECRET_WORDS.has(word + (words[i + 1] ?? '')));
}

/** Secret-looking names with a value (not a $reference) in Env, Labels and history; values are never kept. */
function secretsIn(config: ImageConfig): ImageAnalysis['secrets_in_history'] {
  const found = new Map<string, ImageAnalysis['secrets_in_history'][number]>();
  const check = (source: 'env' | 'history' | 'label', name: string, value: string) => {
    const bare = value.replace(/^(["'])(.*)\1$/, '$2');
    if (!bare || bare.startsWith('$')) return;
    const hit = looksSecret(name) ? name : SECRET_VALUES.find(([pattern]) => pattern.test(bare)) && name;
    if (hit && !found.has(`${source}:${hit}`)) found.set(`${source}:${hit}`, { source, name: hit, value: '[redacted]' });
  };
  for (const entry of config.config?.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) check('env', entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const [name, value] of Object.entries(config.config?.Labels ?? {})) check('label', name, value);
  for (const { created_by: command } of config.history ?? []) {
    if (!command) continue;
    // NAME=value (ENV, build args as `|1 NAME=value`, inline env) and --flag=value / --flag value.
    for (const m of command.matchAll(/(?:^|[\s;&|('"`])-{0,2}([A-Za-z_][\w.-]*)=("[^"]*"|'[^']*'|[^\s;&|'"`)]+)/g))
      check('history', m[1]!, m[2]!);
    for (const m of command.matchAll(/(?:^|\s)--([a-z][\w-]*)\s+("[^"]*"|'[^']*'|[^\s-]\S*)/gi)) check('history', m[1]!, m[2]!);
    for (const [pattern, name] of SECRET_VALUES) if (pattern.test(command)) check('history', name, 'x');
  }
  return [...found.values()];
}
