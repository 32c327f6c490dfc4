/**
 * Which platforms the seeded base image (library/debian:bookworm-slim) holds, and the
 * cache directory scripts/base-image.sh leaves that set's OCI layout in. The shell side
 * is scripts/lib.sh (debian_arch, base_layout_dir); a unit test keeps the two equal.
 */

export const DEFAULT_BASE_PLATFORMS: readonly string[] = ['linux/amd64', 'linux/arm64'];

/** Debian bookworm's release architectures by platform (riscv64 is a Debian port only from trixie on). */
const DEBIAN_ARCH: Record<string, string> = {
  'linux/amd64': 'amd64',
  'linux/arm64': 'arm64',
  'linux/arm64/v8': 'arm64',
  'linux/arm/v7': 'armhf',
  'linux/ppc64le': 'ppc64el',
  'linux/s390x': 's390x',
  'linux/386': 'i386',
  'linux/mips64le': 'mips64el',
};

export const SUPPORTED_BASE_PLATFORMS = Object.keys(DEBIAN_ARCH).filter((p) => p !== 'linux/arm64/v8');

export function debianArch(platform: string): string | undefined {
  return DEBIAN_ARCH[platform];
}

/**
 * The layout directory's name for a set of platforms. The default set (amd64 + arm64)
 * keeps the name it has always had, so existing caches stay valid; another set gets its
 * Debian architectures in the name.
 */
export function baseLayoutName(version: number, platforms: readonly string[] = DEFAULT_BASE_PLATFORMS): string {
  const foreign = [...new Set(platforms.map((p) => DEBIAN_ARCH[p] ?? `unsupported:${p}`))].filter((a) => a !== 'amd64').sort();
  const name = `debian-bookworm-minbase-v${version}`;
  return foreign.join('-') === 'arm64' ? name : `${name}-amd64${foreign.length ? `-${foreign.join('-')}` : ''}`;
}
