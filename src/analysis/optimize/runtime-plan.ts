/**
 * What a runtime stage needs, read from the built image: the files the build produced
 * (written after the base image, owned by no package, not caches or package-manager
 * state), the program the image runs and its interpreter, and the packages that own the
 * libraries those files load. Pure: the file tree, dpkg's database and the ELF dynamic
 * sections come from the worker (workers/optimize-stage-split.ts).
 */
import { buildModel, chain } from '../dockerfile/model.js';
import { invocation, osInstall, packageArgs, isApt } from '../dockerfile/packages.js';
import { commandsOf } from '../dockerfile/script.js';
import type { DpkgOwners } from '../image/dpkg-db.js';
import { shebang, type FileTree } from '../image/file-tree.js';

export interface ProgramInfo {
  argv: string[];
  /** The executable argv[0] names, found through PATH (as the image shows it) and resolved. */
  path?: string;
  real?: string;
  kind: 'elf' | 'script' | 'missing';
  /** For a script: its interpreter, resolved (`/usr/bin/env python3` → /usr/bin/python3.11). */
  interpreter?: string;
  /** `sh -c "python3 -c …"`: the program the shell command starts with, resolved. */
  shellRuns?: string;
}

/** Not the program's: package-manager state, caches, logs, generated system files. */
const NOT_PRODUCED =
  /^\/(proc|sys|dev|run|tmp|var\/tmp|var\/cache|var\/log|var\/lib|var\/mail|var\/spool)(\/|$)|^\/root\/(\.cache|\.npm|\.node-gyp|\.wget-hsts|\.bash_history|\.lesshst|\.gitconfig|\.config\/git|go\/pkg)(\/|$)|^\/usr\/share\/(doc|man|info|mime|icons|fonts|glib-2\.0\/schemas)\/|^\/usr\/(lib|share)\/.*(__pycache__\/|\.pyc$)|^\/usr\/lib\/locale\/locale-archive$|\/gdk-pixbuf-2\.0\/.*loaders\.cache$|^\/\.dockerenv$/;
/**
 * Sources and objects of compiled languages are what a build reads, not what its program
 * runs (an interpreted program's .py/.js files are kept). A program that reads one at run
 * time fails its smoke test, and the rewrite is not offered.
 */
const BUILD_INPUT =
  /(^|\/)\.git(\/|$)|\.(c|cc|cpp|cxx|h|hh|hpp|o|obj|a|go|rs)$|\/(Makefile|CMakeLists\.txt|go\.mod|go\.sum|Cargo\.toml|Cargo\.lock)$/;
/** /etc is what packages and their scripts configure; only the user database goes along, when USER names a user (made in a RUN). */
const ETC_KEPT = /^\/etc\/(passwd|group|shadow|gshadow)$/;
/** Directories a stage split never copies whole, even when everything in them was built: the runtime base has its own. */
const SYSTEM_DIRS = new Set([
  '/',
  '/usr',
  '/etc',
  '/var',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/bin',
  '/sbin',
  '/usr/lib',
  '/usr/bin',
  '/usr/sbin',
  '/usr/share',
  '/usr/include',
  '/root',
  '/home',
]);
/** Characters a COPY source may hold without becoming a pattern or an expansion. */
const SAFE_PATH = /^\/[A-Za-z0-9._+@%,=:/ -]*$/;
export const MAX_COPY_LINES = 40;

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Artifacts {
  /** The paths to COPY (whole directories where everything under them was built). */
  copy: string[];
  files: string[];
  bytes: number;
  /** Regular ELF files among them (their libraries are looked up next). */
  elf: string[];
}

/** The files the build produced: after the base's layers, owned by no package, not state or caches. */
export function findArtifacts(
  tree: FileTree,
  owners: DpkgOwners,
  baseLayers: number,
  copyLayers: Set<number>,
  options: { keepUsers?: boolean } = {},
): Artifacts {
  const produced = new Set<string>();
  const holding = new Set<string>(); // directories with something produced under them
  const dirty = new Set<string>(); // directories with something not produced under them
  const out: Artifacts = { copy: [], files: [], bytes: 0, elf: [] };
  tree.walk((path, entry) => {
    const built =
      entry.layer >= baseLayers &&
      !owners.owner(path) &&
      !NOT_PRODUCED.test(path) &&
      !BUILD_INPUT.test(path) &&
      (!path.startsWith('/etc/') || (options.keepUsers && ETC_KEPT.test(path)) || copyLayers.has(entry.layer)) &&
      !(entry.type === 'symlink' && entry.link.startsWith('/etc/alternatives/'));
    if (built) {
      produced.add(path);
      for (let dir = parent(path); !holding.has(dir); dir = parent(dir)) {
        holding.add(dir);
        if (dir === '/') break;
      }
      out.files.push(path);
      out.bytes += entry.size;
      if (entry.type === 'file' && entry.head && entry.head[0] === 0x7f) out.elf.push(path);
      return;
    }
    for (let dir = parent(path); ; dir = parent(dir)) {
      if (dirty.has(dir)) break;
      dirty.add(dir);
      if (dir === '/') break;
    }
  });
  const cover = (dir: string) => {
    for (const name of tree.list(dir).sort()) {
      const path = dir === '/' ? `/${name}` : `${dir}/${name}`;
      const entry = tree.get(path)!;
      if (entry.type !== 'dir') {
        if (produced.has(path)) out.copy.push(path);
      } else if (!dirty.has(path) && !SYSTEM_DIRS.has(path) && holding.has(path)) out.copy.push(path);
      else if (dirty.has(path) || SYSTEM_DIRS.has(path)) cover(path);
    }
  };
  cover('/');
  return out;
}

const parent = (path: string) => path.slice(0, path.lastIndexOf('/')) || '/';

/** Why these copies cannot be written into a Dockerfile safely, or undefined when they can. */
export function copyRefusal(copy: string[]): string | undefined {
  const bad = copy.find((p) => !SAFE_PATH.test(p));
  if (bad) return `the build wrote ${JSON.stringify(bad)}, a path a COPY line would read as a pattern`;
  if (copy.length > MAX_COPY_LINES) return `the build wrote files in ${copy.length} separate places (at most ${MAX_COPY_LINES} are copied)`;
  return undefined;
}

/** The program the image runs: ENTRYPOINT + CMD, argv[0] looked up in PATH, a script's interpreter found. */
export function findProgram(
  tree: FileTree,
  config: { Entrypoint?: string[] | null; Cmd?: string[] | null; Env?: string[] | null; WorkingDir?: string },
): ProgramInfo {
  const argv = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
  const pathVar = (config.Env ?? []).find((e) => e.startsWith('PATH='))?.slice(5) ?? DEFAULT_PATH;
  const lookup = (name: string): { path: string; real: string } | undefined => {
    if (name.includes('/')) {
      const path = name.startsWith('/') ? name : `${config.WorkingDir || '/'}/${name}`.replace(/\/+/g, '/');
      const real = tree.resolve(path);
      return real ? { path, real } : undefined;
    }
    for (const dir of pathVar.split(':').filter((d) => d.startsWith('/'))) {
      const real = tree.resolve(`${dir}/${name}`);
      if (real && tree.get(real)?.type === 'file') return { path: `${dir}/${name}`, real };
    }
    return undefined;
  };
  if (!argv[0]) return { argv, kind: 'missing' };
  const found = lookup(argv[0]);
  if (!found) return { argv, kind: 'missing' };
  const entry = tree.get(found.real);
  const script = shebang(entry?.head);
  // Shell form (`CMD python3 app.py` is `/bin/sh -c "python3 app.py"`): the first word is the program that matters.
  const first =
    argv[1] === '-c' && /(^|\/)(sh|bash|dash)$/.test(argv[0]) ? /^\s*(?:exec\s+)?([A-Za-z0-9_./+-]+)/.exec(argv[2] ?? '')?.[1] : undefined;
  const shellRuns = first ? lookup(first)?.real : undefined;
  if (!script) return { argv, ...found, kind: entry?.head?.[0] === 0x7f ? 'elf' : 'missing', ...(shellRuns ? { shellRuns } : {}) };
  let interp = lookup(script.interpreter);
  if (script.interpreter.endsWith('/env') && script.arg) interp = lookup(script.arg.split(/\s+/).find((w) => !w.startsWith('-')) ?? '');
  return { argv, ...found, kind: 'script', ...(interp ? { interpreter: interp.real } : {}) };
}

const TOOLCHAIN =
  /^(gcc|g\+\+|cpp|gcc-\d+|g\+\+-\d+|cpp-\d+|make|cmake|build-essential|clang(-\d+)?|llvm(-\d+)?|autoconf|automake|libtool|pkg-config|pkgconf|gfortran|libc6?-dev|linux-libc-dev|golang(-go|-\d+\.\d+(-go)?)?|rustc|cargo|nasm|python3-pip|python3-venv|python3-dev|python3-wheel|python3-setuptools|npm|yarnpkg|node-gyp|git|curl|wget|unzip|xz-utils|patch|bison|flex|dpkg-dev)$/;
const DEV = /-(dev|devel|doc)$/;

/** Packages the final stage installs by name that are not build tools: they stay in the runtime stage. */
export function namedRuntimePackages(dockerfile: string): string[] {
  const model = buildModel(dockerfile);
  if (!model.final) return [];
  const names = new Set<string>();
  for (const stage of chain(model.final))
    for (const instr of stage.instrs) {
      if (instr.keyword !== 'RUN') continue;
      for (const cmd of commandsOf(instr, model.escape)) {
        const inv = invocation(cmd);
        if (!inv || !isApt(inv) || !osInstall(inv)) continue;
        for (const p of packageArgs(inv)) {
          const name = p.split(/[=<>~]/)[0]!;
          if (/^[a-z0-9][a-z0-9+.-]+$/.test(name) && !TOOLCHAIN.test(name) && !DEV.test(name)) names.add(name);
        }
      }
    }
  return [...names].sort();
}

/** `python3.11-minimal` → `python3.11`: the minimal interpreter lacks most of its standard library. */
export function fullInterpreterPackage(pkg: string, installed: (name: string) => boolean): string {
  const full = pkg.replace(/-minimal$/, '');
  return full !== pkg && installed(full) ? full : pkg;
}

/** The image's root base (what the final stage is built FROM, through earlier stages), or undefined for an unresolved ARG. */
export function rootImage(dockerfile: string): string | undefined {
  const model = buildModel(dockerfile);
  const root = model.final ? chain(model.final).at(-1)! : undefined;
  return root?.imageResolved ? root.image : undefined;
}
