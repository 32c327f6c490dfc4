import { posix } from 'node:path';
import { machineName, type ElfHeader } from './elf-header.js';
import { lookup, put, walk, type FsNode } from './layer-tree.js';
import { judgeElf } from './platform-rules.js';

/**
 * The platform honesty check over an image's final filesystem: every ELF executable and
 * shared object left after all layers (what later layers deleted or replaced does not
 * count) must be for the image's platform, unless platform-rules.ts exempts it. Pure:
 * engines/registry/platform-check.ts streams the layers and hands their entries in.
 */

/** What one layer's tar says, with the ELF headers of its regular files (and of hardlinks to them). */
export interface ElfLayer {
  adds: { path: string; dir: boolean }[];
  whiteouts: string[];
  opaques: string[];
  elf: Map<string, ElfHeader>;
}

export interface FileMismatch {
  path: string;
  /** "x86-64", "AArch64", … */
  machine: string;
  /** The OCI architecture the file is for. */
  arch: string;
  /** Index into the layers given. */
  layer: number;
}

export interface FilesystemCheck {
  /** ELF executables and shared objects of a known machine in the final filesystem. */
  files_checked: number;
  /** Of those, foreign ones a path rule excused (multiarch, firmware, testdata, …). */
  files_exempt: number;
  mismatches_total: number;
  /** The first `limit`, by layer then path. */
  mismatches: FileMismatch[];
}

export function checkFilesystem(layers: ElfLayer[], platform: string, limit = 50): FilesystemCheck {
  const root: FsNode = { size: 0, layer: -1, children: new Map() };
  const drop = () => undefined;
  layers.forEach((layer, index) => {
    // Whiteouts hide what the layers below hold, never what this layer adds, so they go first.
    for (const dir of layer.opaques) lookup(root, dir)?.children?.clear();
    for (const path of layer.whiteouts) lookup(root, posix.dirname(path))?.children?.delete(posix.basename(path));
    for (const add of layer.adds) put(root, add.path, add.dir ? undefined : { size: 0, layer: index }, drop);
  });
  const found: FileMismatch[] = [];
  let checked = 0;
  let exempt = 0;
  walk(root, '', (path, file) => {
    const header = layers[file.layer]?.elf.get(path);
    if (!header) return;
    const verdict = judgeElf(path, header, platform);
    if (!verdict.ok) found.push({ path, machine: machineName(header), arch: verdict.arch, layer: file.layer });
    else {
      if (verdict.checked) checked++;
      if (verdict.exempt) exempt++;
    }
  });
  found.sort((a, b) => a.layer - b.layer || (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { files_checked: checked + found.length, files_exempt: exempt, mismatches_total: found.length, mismatches: found.slice(0, limit) };
}
