/**
 * Where glibc's dynamic loader would find a DT_NEEDED library inside an image, so the
 * optimizer can copy an ELF program's library closure into a runtime stage (or onto
 * `scratch`). Pure: the caller answers `exists` from the image's file tree.
 *
 * Left out on purpose: LD_LIBRARY_PATH (an environment choice, not the program's), the
 * RPATH of the objects that loaded this one (the caller walks its own chain), DF_1_NODEFLIB,
 * hwcaps subdirectories, and musl's search (Alpine's loader reads /etc/ld-musl-<arch>.path
 * and treats RPATH and RUNPATH alike; callers pass that file's directories as confDirs).
 */
import { posix } from 'node:path';

const TRIPLETS: Record<string, string> = {
  amd64: 'x86_64-linux-gnu',
  arm64: 'aarch64-linux-gnu',
  '386': 'i386-linux-gnu',
  ppc64le: 'powerpc64le-linux-gnu',
  s390x: 's390x-linux-gnu',
  mips64le: 'mips64el-linux-gnuabi64',
  riscv64: 'riscv64-linux-gnu',
};

/** Architectures whose RPM-style distributions keep their libraries in /lib64 and /usr/lib64. */
const BITS64 = new Set(['amd64', 'arm64', 'ppc64le', 'ppc64', 's390x', 'mips64le', 'mips64', 'riscv64', 'loong64', 'sparc64']);

/**
 * Debian's multiarch triplet for an OCI platform: amd64 → x86_64-linux-gnu, arm64 → aarch64-linux-gnu,
 * arm (v7/v6) → arm-linux-gnueabihf, 386 → i386-linux-gnu, ppc64le → powerpc64le-linux-gnu,
 * s390x → s390x-linux-gnu, mips64le → mips64el-linux-gnuabi64, riscv64 → riscv64-linux-gnu;
 * also arm/v5 → arm-linux-gnueabi (Debian's armel); undefined otherwise.
 */
export function multiarchTriplet(arch: string, variant?: string): string | undefined {
  if (arch === 'arm') {
    // Debian's armel (soft-float, ARMv5) is arm/v5; armhf serves v7 and, in Raspbian-style images, v6.
    if (variant === 'v5') return 'arm-linux-gnueabi';
    return variant === undefined || variant === 'v6' || variant === 'v7' ? 'arm-linux-gnueabihf' : undefined;
  }
  return Object.hasOwn(TRIPLETS, arch) ? TRIPLETS[arch] : undefined;
}

/** Directories listed by ld.so.conf-style text: one per line, comments (#) and `include` lines ignored, only absolute paths. */
export function parseLdSoConf(text: string): string[] {
  const dirs: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    // `include` pulls in other files (the caller reads ld.so.conf.d itself); `hwcap` is an obsolete directive.
    if (line === '' || /^(include|hwcap)\s/.test(line)) continue;
    if (!line.startsWith('/')) continue;
    const dir = normalise(line);
    if (!dirs.includes(dir)) dirs.push(dir);
  }
  return dirs;
}

export interface LibrarySearch {
  /** Absolute path of the ELF that needs the library (for $ORIGIN). */
  from: string;
  runpath: string[];
  rpath: string[];
  arch: string;
  variant?: string;
  /** Extra directories from /etc/ld.so.conf and /etc/ld.so.conf.d/*.conf, in order. */
  confDirs: string[];
  /** Whether a path exists in the image (the caller resolves symlinks). */
  exists: (path: string) => boolean;
}

/**
 * Where glibc's loader would find `soname`: a soname containing '/' is a path; else DT_RPATH (only
 * without DT_RUNPATH), DT_RUNPATH, the conf dirs, then the defaults (/lib/<triplet>, /usr/lib/<triplet>,
 * /lib, /usr/lib, plus /lib64 and /usr/lib64 for 64-bit arches, searched before /lib and /usr/lib).
 * $ORIGIN/${ORIGIN} expanded to dirname(from). Paths normalised (posix). undefined when not found.
 */
export function findLibrary(soname: string, search: LibrarySearch): string | undefined {
  const origin = posix.dirname(normalise(search.from));
  if (soname === '') return undefined;
  if (soname.includes('/')) {
    // The loader opens it as given (after expanding $ORIGIN); a relative one depends on the
    // process's working directory, which the image does not fix.
    const path = expand(soname, origin);
    return path !== undefined && path.startsWith('/') && search.exists(normalise(path)) ? normalise(path) : undefined;
  }
  for (const dir of searchDirs(search, origin)) {
    const path = posix.join(dir, soname);
    if (search.exists(path)) return path;
  }
  return undefined;
}

/** The directories searched, in the loader's order, absolute, normalised and without repeats. */
function searchDirs(search: LibrarySearch, origin: string): string[] {
  // The presence of DT_RUNPATH, even an empty one, turns DT_RPATH off.
  const fromObject = search.runpath.length > 0 ? search.runpath : search.rpath;
  const dirs: string[] = [];
  for (const entry of fromObject) {
    const dir = expand(entry, origin);
    // An empty or relative entry is relative to the working directory at run time: unknowable here.
    if (dir !== undefined && dir.startsWith('/')) dirs.push(normalise(dir));
  }
  for (const dir of search.confDirs) if (dir.startsWith('/')) dirs.push(normalise(dir));
  dirs.push(...defaultDirs(search.arch, search.variant));
  return [...new Set(dirs)];
}

/**
 * The loader's built-in directories. Debian and Ubuntu keep libraries under the multiarch
 * triplet; Fedora, RHEL and SUSE under /lib64 on 64-bit. lib64 comes before the plain lib
 * directories because on a multilib system those hold the 32-bit copies of the same sonames.
 */
function defaultDirs(arch: string, variant?: string): string[] {
  const triplet = multiarchTriplet(arch, variant);
  const dirs = triplet ? [`/lib/${triplet}`, `/usr/lib/${triplet}`] : [];
  if (BITS64.has(arch)) dirs.push('/lib64', '/usr/lib64');
  dirs.push('/lib', '/usr/lib');
  return dirs;
}

/**
 * `$ORIGIN` and `${ORIGIN}` replaced by the directory of the object. undefined when the text
 * uses $LIB or $PLATFORM, whose values depend on how the image's glibc was built and on the CPU.
 */
function expand(text: string, origin: string): string | undefined {
  if (/\$(\{(LIB|PLATFORM)\}|(LIB|PLATFORM)(?![A-Za-z0-9_]))/.test(text)) return undefined;
  return text.replace(/\$(\{ORIGIN\}|ORIGIN(?![A-Za-z0-9_]))/g, () => origin);
}

/** A normalised absolute path without a trailing slash (except "/"). */
function normalise(path: string): string {
  const p = posix.normalize(path);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
