/**
 * The merged filesystem of an image's layers, as a tree of sizes: what each layer adds,
 * replaces or deletes, the largest files left, and the caches a build left behind. Pure:
 * engines/registry/image-analysis.ts streams the layers and feeds their entries in.
 */
export type CacheKind = 'apt-lists' | 'apt-archives' | 'pip-cache' | 'npm-cache' | 'apk-cache' | 'yarn-cache' | 'go-build-cache' | 'other';
export interface CachePath {
  path: string;
  kind: CacheKind;
  size_bytes: number;
}

export interface FsNode {
  size: number;
  layer: number;
  children?: Map<string, FsNode>; // set for directories only
}
/** Accounts for a subtree leaving the filesystem: deleted by a whiteout, or superseded. */
export type Drop = (node: FsNode, deleted: boolean) => void;

export function lookup(root: FsNode, path: string): FsNode | undefined {
  let node: FsNode | undefined = root;
  for (const name of path.split('/')) if (name) node = node?.children?.get(name);
  return node;
}

/**
 * Puts a file (or, with no `file`, a directory) at path, making missing parents; what it
 * replaces is dropped as superseded. A directory over a directory keeps its contents.
 * Answers whether something was there already.
 */
export function put(root: FsNode, path: string, file: { size: number; layer: number } | undefined, drop: Drop): boolean {
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

/** Visits every non-directory of the tree, with its absolute path. */
export function walk(node: FsNode, path: string, visit: (path: string, file: FsNode) => void): void {
  if (!node.children) return visit(path, node);
  node.children.forEach((child, name) => walk(child, `${path}/${name}`, visit));
}

export function largestFiles(root: FsNode, count: number): { path: string; size: number; layer: number }[] {
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

export function cachePaths(root: FsNode): CachePath[] {
  const homes = ['/root', ...[...(lookup(root, '/home')?.children?.keys() ?? [])].map((user) => `/home/${user}`)];
  const found: CachePath[] = [];
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
