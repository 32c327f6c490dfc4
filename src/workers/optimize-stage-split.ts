import { DpkgOwners, finalLists, parseDpkgStatus, statusAt } from '../analysis/image/dpkg-db.js';
import { readElfDynamic, type ElfDynamic } from '../analysis/image/elf-dynamic.js';
import type { FileTree } from '../analysis/image/file-tree.js';
import { findLibrary, parseLdSoConf } from '../analysis/image/library-search.js';
import {
  copyRefusal,
  findArtifacts,
  findProgram,
  fullInterpreterPackage,
  namedRuntimePackages,
  rootImage,
} from '../analysis/optimize/runtime-plan.js';
import { writeStageSplit } from '../analysis/optimize/stage-split.js';
import { readFileBodies, readImageFiles, type ImageFiles } from '../engines/registry/image-files.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { parseImageReference } from '../oci/references.js';

/**
 * Plans the multi-stage rewrites of a built image: the original Dockerfile becomes the
 * build stage, and a runtime stage is written per base image that can take the program —
 * the original's own Debian base with the runtime packages installed, and `scratch` with
 * the program's ELF closure copied in, for a compiled program. Each plan is only a
 * candidate: optimize-verify.ts builds and smoke-tests it before anything is offered.
 */

export interface StageSplitPlan {
  base: string;
  dockerfile: string;
  packages: string[];
  copies: string[];
}

export interface StageSplitPlans {
  plans: StageSplitPlan[];
  /** Bases that were not tried, and why. */
  skipped: { base: string; reason: string }[];
  produced: { files: number; bytes: number; paths: string[] };
  program: string | null;
}

export interface StageSplitDeps {
  inspector: ImageInspector;
  registries: RegistryResolver;
}

/** Library lookups followed from the program down (libc needs the loader, and so on). */
const MAX_CLOSURE_ROUNDS = 8;
const USERLESS = /^(|root|0|0:0)$/;

export async function planStageSplits(
  deps: StageSplitDeps,
  built: string,
  dockerfile: string,
  signal: AbortSignal,
): Promise<StageSplitPlans> {
  const info = await deps.inspector.inspect(built);
  const ref = parseImageReference(built);
  const client = deps.registries.clientFor(ref.registry);
  const files = await readImageFiles(client, ref.repository, info.manifest_digest, { signal });
  const root = rootImage(dockerfile);
  const baseLayers = await baseLayerCount(deps, root, files, info.os, info.architecture, info.variant);
  const copyLayers = new Set(info.layers.flatMap((l, i) => (/^(COPY|ADD)\b/.test(l.created_by ?? '') ? [i] : [])));
  const { tree } = files;
  const owners = new DpkgOwners(tree, finalLists(tree, files.texts));
  const installed = parseDpkgStatus(statusAt(files.texts, files.layers.length - 1));
  const basePackages = parseDpkgStatus(statusAt(files.texts, baseLayers - 1));
  const artifacts = findArtifacts(tree, owners, baseLayers, copyLayers, { keepUsers: !USERLESS.test(files.config.User ?? '') });
  const program = findProgram(tree, files.config);
  const out: StageSplitPlans = {
    plans: [],
    skipped: [],
    produced: { files: artifacts.files.length, bytes: artifacts.bytes, paths: artifacts.copy.slice(0, 50) },
    program: program.real ?? null,
  };
  const skip = (base: string, reason: string) => (out.skipped.push({ base, reason }), out);
  if (program.kind === 'missing')
    return skip('*', `the image's command (${JSON.stringify(program.argv[0] ?? '')}) is not a file in the image`);
  const refusal = copyRefusal(artifacts.copy);
  if (refusal) return skip('*', refusal);

  const elf = await readElves(client, files, [...artifacts.elf, ...(program.kind === 'elf' && program.real ? [program.real] : [])], signal);
  const search = librarySearch(files);
  const libraries = new Set<string>();
  for (const [path, dyn] of elf) for (const soname of dyn.needed) addFound(libraries, findLibrary(soname, { ...search(path, dyn) }));

  if (basePackages.size && root) {
    const wanted = new Set(namedRuntimePackages(dockerfile).filter((p) => installed.has(p)));
    const own = (path: string | undefined) => {
      const pkg = path ? (owners.owner(path) ?? owners.owner(tree.resolve(path) ?? path)) : undefined;
      if (pkg) wanted.add(fullInterpreterPackage(pkg, (n) => installed.has(n)));
    };
    for (const lib of libraries) own(lib);
    if (program.kind === 'script') own(program.interpreter);
    if (program.shellRuns && !artifacts.files.includes(program.shellRuns)) own(program.shellRuns);
    else if (!artifacts.files.includes(program.real!)) {
      own(program.path);
      own(program.real);
    }
    const packages = [...wanted].filter((p) => !basePackages.has(p)).sort();
    const copies = [...artifacts.copy];
    out.plans.push({
      base: root,
      packages,
      copies,
      dockerfile: writeStageSplit({ original: dockerfile, base: root, packages, copy: copies, config: files.config }),
    });
  } else skip(root ?? 'base', 'the original base has no Debian package database to install runtime packages from');

  if (program.kind !== 'elf' || !artifacts.files.includes(program.real!))
    skip('scratch', 'the command is not a program the build compiled');
  else {
    const closure = await elfClosure(client, files, elf, search, signal);
    if (typeof closure === 'string') skip('scratch', closure);
    else {
      const users = USERLESS.test(files.config.User ?? '') ? [] : ['/etc/passwd', '/etc/group'].filter((p) => tree.exists(p));
      const copies = [...new Set([...artifacts.copy, ...closure, ...users])];
      const bad = copyRefusal(copies);
      if (bad) skip('scratch', bad);
      else
        out.plans.push({
          base: 'scratch',
          packages: [],
          copies,
          dockerfile: writeStageSplit({ original: dockerfile, base: 'scratch', packages: [], copy: copies, config: files.config }),
        });
    }
  }
  return out;
}

/** How many of the image's layers come from its root base: the common prefix with the base's own layers. */
async function baseLayerCount(
  deps: StageSplitDeps,
  root: string | undefined,
  files: ImageFiles,
  os: string,
  arch: string,
  variant?: string,
): Promise<number> {
  if (!root || root === 'scratch') return 0;
  const base = await deps.inspector.inspect(root, [os, arch, variant].filter(Boolean).join('/')).catch(() => undefined);
  if (!base) return 0;
  let n = 0;
  while (n < base.layers.length && n < files.layers.length && base.layers[n]!.digest === files.layers[n]!.digest) n++;
  return n;
}

async function readElves(
  client: Parameters<typeof readFileBodies>[0],
  files: ImageFiles,
  paths: string[],
  signal: AbortSignal,
): Promise<Map<string, ElfDynamic>> {
  const bodies = await readFileBodies(client, files, [...new Set(paths)], { signal });
  const out = new Map<string, ElfDynamic>();
  for (const [path, body] of bodies) {
    const dyn = readElfDynamic(body);
    if (dyn) out.set(path, dyn);
  }
  return out;
}

type Search = (from: string, dyn: ElfDynamic) => Parameters<typeof findLibrary>[1];

function librarySearch(files: ImageFiles): Search {
  const { tree } = files;
  const confDirs = [...files.texts.entries()]
    .filter(([path]) => /^\/etc\/ld\.so\.conf(\.d\/.*)?$/.test(path) && tree.get(path))
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([, versions]) => parseLdSoConf(versions.at(-1)!.text));
  return (from, dyn) => ({
    from,
    runpath: dyn.runpath,
    rpath: dyn.rpath,
    arch: files.architecture,
    ...(files.variant ? { variant: files.variant } : {}),
    confDirs,
    exists: (p: string) => isFile(tree, p),
  });
}

const isFile = (tree: FileTree, path: string) => {
  const real = tree.resolve(path);
  return !!real && tree.get(real)?.type !== 'dir';
};
const addFound = (set: Set<string>, path: string | undefined) => path && set.add(path);

/** Every library the program loads, and its loader, as the paths the loader opens; or why not. */
async function elfClosure(
  client: Parameters<typeof readFileBodies>[0],
  files: ImageFiles,
  start: Map<string, ElfDynamic>,
  search: Search,
  signal: AbortSignal,
): Promise<string[] | string> {
  const found = new Set<string>();
  let frontier = start;
  const seen = new Set(start.keys());
  for (let round = 0; frontier.size && round < MAX_CLOSURE_ROUNDS; round++) {
    const next: string[] = [];
    for (const [path, dyn] of frontier) {
      if (dyn.interpreter) {
        if (!isFile(files.tree, dyn.interpreter)) return `the loader ${dyn.interpreter} is not in the image`;
        found.add(dyn.interpreter);
      }
      for (const soname of dyn.needed) {
        const lib = findLibrary(soname, search(path, dyn));
        if (!lib) return `${path} needs ${soname}, which is not in the image`;
        found.add(lib);
        const real = files.tree.resolve(lib)!;
        if (seen.has(real)) continue;
        seen.add(real);
        next.push(real);
      }
    }
    frontier = await readElves(client, files, next, signal);
    // Each library was read under its real path; look its own needs up from where the loader found it.
  }
  return [...found].sort();
}
