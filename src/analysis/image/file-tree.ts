/**
 * An image's final filesystem with what each path is (file, symlink, directory), which
 * layer last wrote it and, for regular files, their first bytes (ELF header, `#!` line):
 * what the optimizer needs to tell the files a build produced from what packages own, and
 * to follow symlinks the way the kernel and the dynamic loader would. Pure: the layers'
 * entries are fed in by engines/registry/image-files.ts.
 */
import { posix } from 'node:path';

export type FileType = 'file' | 'symlink' | 'hardlink' | 'dir' | 'other';

export interface FileEntry {
  type: FileType;
  size: number;
  /** Symlink target as written, or the hardlink's target path (absolute). */
  link: string;
  /** Index of the layer that last wrote this path. */
  layer: number;
  /** First bytes of a regular file, kept only for ELF files and `#!` scripts. */
  head?: Buffer;
}

interface Node {
  entry: FileEntry;
  children?: Map<string, Node>;
}

/** One layer's entries, before they are stacked on the layers below. */
export interface LayerEntries {
  adds: { path: string; type: FileType; size: number; link: string; head?: Buffer }[];
  /** Paths a `.wh.<name>` hides. */
  whiteouts: string[];
  /** Directories a `.wh..wh..opq` empties. */
  opaques: string[];
}

/** Symlinks followed while resolving one path: Linux gives up after 40 too. */
const MAX_LINKS = 40;

const dirEntry = (layer: number): FileEntry => ({ type: 'dir', size: 0, link: '', layer });
const names = (path: string) => path.split('/').filter((n) => n && n !== '.');

export class FileTree {
  private readonly root: Node = { entry: dirEntry(-1), children: new Map() };
  layers = 0;

  /** Stacks one layer: its whiteouts and opaque markers hide what the layers below wrote, then its entries land. */
  apply(layer: LayerEntries): void {
    const index = this.layers++;
    for (const dir of layer.opaques) {
      const node = this.node(dir);
      if (node?.children) node.children = new Map();
    }
    for (const path of layer.whiteouts) {
      const parts = names(path);
      const parent = this.node(`/${parts.slice(0, -1).join('/')}`);
      parent?.children?.delete(parts.at(-1)!);
    }
    for (const add of layer.adds) this.put(add.path, { type: add.type, size: add.size, link: add.link, layer: index, head: add.head });
  }

  get(path: string): FileEntry | undefined {
    return this.node(path)?.entry;
  }

  /** Lists a directory's names (as stored, no symlinks followed). */
  list(dir: string): string[] {
    return [...(this.node(dir)?.children?.keys() ?? [])];
  }

  /** Visits every non-directory with its absolute path, in name order (deterministic output). */
  walk(visit: (path: string, entry: FileEntry) => void, from = '/'): void {
    const start = this.node(from);
    if (!start) return;
    const go = (node: Node, path: string) => {
      if (!node.children) return visit(path || '/', node.entry);
      for (const name of [...node.children.keys()].sort()) go(node.children.get(name)!, `${path}/${name}`);
    };
    go(start, from === '/' ? '' : posix.normalize(from));
  }

  /**
   * The path with every symlink resolved (in any component, relative or absolute targets),
   * or undefined when a component is missing or the links loop.
   */
  resolve(path: string): string | undefined {
    let pending = names(path);
    const done: string[] = [];
    let links = 0;
    while (pending.length) {
      const name = pending.shift()!;
      if (name === '..') {
        done.pop();
        continue;
      }
      const here = `/${[...done, name].join('/')}`;
      const entry = this.get(here);
      if (!entry) return undefined;
      if (entry.type === 'symlink') {
        if (++links > MAX_LINKS) return undefined;
        const target = entry.link;
        if (target.startsWith('/')) done.length = 0;
        pending = [...names(target), ...pending];
        continue;
      }
      done.push(name);
    }
    return `/${done.join('/')}`;
  }

  /** Whether a path exists once symlinks are followed. */
  exists(path: string): boolean {
    return this.resolve(path) !== undefined;
  }

  private node(path: string): Node | undefined {
    let node: Node | undefined = this.root;
    for (const name of names(path)) node = node?.children?.get(name);
    return node;
  }

  private put(path: string, entry: FileEntry): void {
    const parts = names(path);
    if (!parts.length) return;
    let parent = this.root;
    for (const name of parts.slice(0, -1)) {
      let child = parent.children!.get(name);
      // A path under a non-directory replaces it with a directory, as overlayfs would show.
      if (!child?.children) parent.children!.set(name, (child = { entry: dirEntry(entry.layer), children: new Map() }));
      parent = child;
    }
    const name = parts.at(-1)!;
    const old = parent.children!.get(name);
    if (entry.type === 'dir') {
      if (old?.children) old.entry = { ...entry };
      else parent.children!.set(name, { entry, children: new Map() });
      return;
    }
    parent.children!.set(name, { entry });
  }
}

/** `#!/usr/bin/env python3 -u` → ['/usr/bin/env', 'python3 -u']; undefined without a `#!` line. */
export function shebang(head: Buffer | undefined): { interpreter: string; arg?: string } | undefined {
  if (!head || head[0] !== 0x23 || head[1] !== 0x21) return undefined;
  const end = head.indexOf(0x0a);
  const line = head
    .subarray(2, end < 0 ? head.length : end)
    .toString('utf8')
    .trim();
  const m = /^(\S+)(?:\s+(.*))?$/.exec(line);
  return m ? { interpreter: m[1]!, ...(m[2] ? { arg: m[2].trim() } : {}) } : undefined;
}

export const isElf = (head: Buffer | undefined) =>
  !!head && head.length >= 4 && head[0] === 0x7f && head.toString('latin1', 1, 4) === 'ELF';
