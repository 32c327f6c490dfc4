import { elfArch, type ElfHeader } from './elf-header.js';

/**
 * Whether an ELF file belongs in an image labelled with a platform. Only executables and
 * shared objects (ET_EXEC, ET_DYN) of a known machine are judged; the rest is exempt:
 *
 * - anything that is not ELF (scripts, data, text, ar archives) — never read as ELF;
 * - ELF relocatable objects (.o, .ko; ET_REL) and core files: never executed or loaded by
 *   the dynamic loader, and kernel modules or eBPF objects are routinely foreign;
 * - an ELF machine no image platform has (e.g. a DSP or GPU blob): nothing to compare to;
 * - architecture-independent or foreign-by-design paths: /usr/share/, firmware
 *   (/lib/firmware/, /usr/lib/firmware/), test data (any .../testdata/... directory, as in
 *   Go's tree) and cross toolchains' /usr/lib/gcc-cross/;
 * - Debian multiarch and cross installs: a file under a path segment that is a GNU
 *   triplet (/usr/lib/i386-linux-gnu/, /usr/aarch64-linux-gnu/lib/) when the file's machine
 *   is that triplet's — installed there on purpose (dpkg --add-architecture, a cross
 *   compiler). A foreign file under the platform's own triplet is still a mismatch;
 * - 32-bit companions in their own directories (/lib32, /usr/lib32, /libx32, /usr/libx32):
 *   386 under amd64, 32-bit ARM under arm64.
 */

/** OCI architecture of a platform ("linux/arm/v7" → arm), aliases folded (x86_64 → amd64, aarch64 → arm64). */
export function platformArch(platform: string): string {
  const arch = platform.split('/')[1] ?? platform;
  return ARCH_ALIASES[arch] ?? arch;
}

const ARCH_ALIASES: Record<string, string> = { x86_64: 'amd64', aarch64: 'arm64', i386: '386', i686: '386', armhf: 'arm', armel: 'arm' };

/** The CPU part of a GNU triplet as an OCI architecture. */
function tripletArch(segment: string): string | undefined {
  const m = /^([a-z0-9_]+)-linux-(gnu|musl)[a-z0-9_]*$/.exec(segment);
  if (!m) return undefined;
  const cpu = m[1]!;
  if (cpu === 'x86_64') return 'amd64';
  if (/^i[3-6]86$/.test(cpu)) return '386';
  if (cpu === 'aarch64') return 'arm64';
  if (cpu.startsWith('arm')) return 'arm';
  if (cpu === 'powerpc64le') return 'ppc64le';
  if (cpu === 'powerpc64') return 'ppc64';
  if (cpu === 'powerpc') return 'ppc';
  if (cpu === 's390x') return 's390x';
  if (cpu === 'loongarch64') return 'loong64';
  if (/^mips/.test(cpu))
    return cpu
      .replace(/^mipsisa/, 'mips')
      .replace(/el$/, 'le')
      .replace(/r6/, '');
  return cpu; // riscv64, …
}

const DATA_PREFIXES = ['/usr/share/', '/lib/firmware/', '/usr/lib/firmware/', '/usr/lib/gcc-cross/'];
const COMPANION_DIRS = ['/lib32/', '/usr/lib32/', '/libx32/', '/usr/libx32/'];
const COMPANIONS: Record<string, string> = { amd64: '386', arm64: 'arm' };

export type Verdict = { ok: true; checked: boolean; exempt?: string } | { ok: false; arch: string };

/**
 * The verdict on one file of the final filesystem: `checked` when its machine was
 * compared, `exempt` naming the path rule that excused a foreign file.
 */
export function judgeElf(path: string, header: ElfHeader, platform: string): Verdict {
  if (header.type !== 'executable' && header.type !== 'shared') return { ok: true, checked: false };
  const arch = elfArch(header);
  if (!arch) return { ok: true, checked: false };
  const want = platformArch(platform);
  if (arch === want) return { ok: true, checked: true };
  const exempt = exemption(path, arch, want);
  return exempt ? { ok: true, checked: true, exempt } : { ok: false, arch };
}

function exemption(path: string, arch: string, want: string): string | undefined {
  const prefix = DATA_PREFIXES.find((p) => path.startsWith(p));
  if (prefix) return prefix;
  if (path.includes('/testdata/')) return 'testdata';
  for (const segment of path.split('/').slice(0, -1)) {
    const triplet = tripletArch(segment);
    if (triplet === arch) return `multiarch ${segment}`;
  }
  if (COMPANIONS[want] === arch && COMPANION_DIRS.some((d) => path.startsWith(d))) return '32-bit companion';
  return undefined;
}
