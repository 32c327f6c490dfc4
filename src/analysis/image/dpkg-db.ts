/**
 * What dpkg says an image holds: the installed packages (from /var/lib/dpkg/status) and
 * which package owns each path (from /var/lib/dpkg/info/<package>.list). Paths are
 * compared once their directories are resolved in the image, so `/lib/x86_64-linux-gnu/libc.so.6`
 * as listed and `/usr/lib/x86_64-linux-gnu/libc.so.6` as stored (merged /usr) are the same file.
 * Pure: the texts come from engines/registry/image-files.ts.
 */
import type { FileTree } from './file-tree.js';

export interface DpkgPackage {
  name: string;
  version: string;
  architecture: string;
  essential: boolean;
  priority: string;
  /** Package names this one depends on (alternatives flattened, versions dropped). */
  depends: string[];
}

/** Installed packages by name ("install ok installed" only; half-installed and removed ones are not there). */
export function parseDpkgStatus(text: string): Map<string, DpkgPackage> {
  const out = new Map<string, DpkgPackage>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let key = '';
    for (const line of stanza.split('\n')) {
      if (/^\s/.test(line) && key) fields.set(key, `${fields.get(key)}\n${line.trim()}`);
      else {
        const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line);
        if (m) fields.set((key = m[1]!.toLowerCase()), m[2]!);
      }
    }
    const name = fields.get('package');
    if (!name || !/ ok installed$/.test(fields.get('status') ?? '')) continue;
    if (out.has(name)) continue;
    out.set(name, {
      name,
      version: fields.get('version') ?? '',
      architecture: fields.get('architecture') ?? '',
      essential: fields.get('essential') === 'yes',
      priority: fields.get('priority') ?? '',
      depends: [...(fields.get('pre-depends') ?? '').split(','), ...(fields.get('depends') ?? '').split(',')]
        .flatMap((d) => d.split('|'))
        .map((d) => d.trim().split(/[\s:(]/)[0]!)
        .filter(Boolean),
    });
  }
  return out;
}

export class DpkgOwners {
  private readonly owners = new Map<string, string>();
  private readonly dirs = new Map<string, string>();

  /** `lists`: the final text of each /var/lib/dpkg/info/*.list file, by its path. */
  constructor(
    private readonly tree: FileTree,
    lists: Map<string, string>,
  ) {
    for (const [file, text] of lists) {
      const base = file.slice(file.lastIndexOf('/') + 1, -'.list'.length);
      const pkg = base.split(':')[0]!;
      for (const line of text.split('\n')) {
        if (!line.startsWith('/') || line === '/.') continue;
        this.owners.set(this.canonical(line), pkg);
      }
    }
  }

  /** The package that owns a path of the image, if any (the path as stored or as dpkg lists it). */
  owner(path: string): string | undefined {
    return this.owners.get(this.canonical(path));
  }

  /** The path with its directory resolved in the image (the last component is kept: a symlink stays itself). */
  canonical(path: string): string {
    const cut = path.lastIndexOf('/');
    const dir = path.slice(0, cut) || '/';
    let real = this.dirs.get(dir);
    if (real === undefined) this.dirs.set(dir, (real = this.tree.resolve(dir) ?? dir));
    return `${real === '/' ? '' : real}${path.slice(cut)}`;
  }
}

/** The final text of each dpkg file list still present in the image. */
export function finalLists(tree: FileTree, texts: Map<string, { layer: number; text: string }[]>): Map<string, string> {
  const out = new Map<string, string>();
  for (const [path, versions] of texts) {
    if (!/^\/var\/lib\/dpkg\/info\/[^/]+\.list$/.test(path)) continue;
    const entry = tree.get(path);
    const last = versions.at(-1)!;
    if (entry && entry.layer === last.layer) out.set(path, last.text);
  }
  return out;
}

/** dpkg's status as of a layer (the last version written at or below it), or '' when none. */
export function statusAt(texts: Map<string, { layer: number; text: string }[]>, layer: number): string {
  const versions = (texts.get('/var/lib/dpkg/status') ?? []).filter((v) => v.layer <= layer);
  return versions.at(-1)?.text ?? '';
}
