import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RegistryClient } from '../engines/registry/registry-client.js';
import { baseLayoutName, DEFAULT_BASE_PLATFORMS } from './base-platforms.js';

export const BASE_IMAGE = { repository: 'library/debian', tag: 'bookworm-slim' } as const;

/**
 * The version of the layout scripts/base-image.sh writes, BASE_LAYOUT_VERSION in
 * scripts/versions.env (a unit test keeps them equal): 2 is an image index of
 * linux/amd64 and the other STEVEDORE_BASE_PLATFORMS (default linux/arm64), each
 * debootstrapped for its architecture.
 */
export const BASE_LAYOUT_VERSION = 2;

/** Where scripts/base-image.sh leaves the OCI layout of the debootstrapped base. */
export function baseLayoutDir(cacheDir: string, platforms: readonly string[] = DEFAULT_BASE_PLATFORMS): string {
  return join(cacheDir, 'base', baseLayoutName(BASE_LAYOUT_VERSION, platforms));
}

/** The digest of the layout's image index (the first entry of its index.json), or undefined without a layout. */
export async function layoutDigest(layout: string): Promise<string | undefined> {
  if (!existsSync(join(layout, 'index.json'))) return undefined;
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests?: { digest?: string }[] };
  return index.manifests?.[0]?.digest;
}

export type SeedLog = (message: string, level?: 'warn') => void;

/**
 * Makes sure the mirror registry holds library/debian:bookworm-slim as made here,
 * pushing the locally made base image when it is missing. `required` means the
 * registry is serve's own (embedded): there a tag pointing at anything else (someone
 * pushed over it; every `FROM debian:bookworm-slim` would build on it) is restored,
 * with a warning. A registry the operator runs may rightly hold Docker Hub's own
 * image under that tag: a different digest there is only reported.
 */
export async function seedBaseImage(
  registry: RegistryClient,
  cacheDir: string,
  log: SeedLog,
  options: { required: boolean; platforms?: readonly string[] },
): Promise<void> {
  const present = await registry.manifestDigest(BASE_IMAGE.repository, BASE_IMAGE.tag).catch((err: Error) => {
    if (options.required) throw err;
    log(`cannot check the base image in the mirror: ${err.message}`);
    return 'unknown';
  });
  if (present === 'unknown') return;
  const layout = baseLayoutDir(cacheDir, options.platforms);
  const expected = await layoutDigest(layout);
  if (!expected) {
    if (present) return; // nothing to compare with: whatever the registry holds stays
    const message = `base image layout missing at ${layout}: run \`npm run setup\` (scripts/base-image.sh) first`;
    if (options.required) throw new Error(message);
    log(message);
    return;
  }
  if (present === expected) return;
  const name = `${BASE_IMAGE.repository}:${BASE_IMAGE.tag}`;
  if (present) {
    if (!options.required) {
      log(
        `${name} in the mirror is ${present}, not the base image made here (${expected}); leaving it (it may be Docker Hub's own)`,
        'warn',
      );
      return;
    }
    log(
      `${name} in the embedded registry was ${present}, not the base image made here (${expected}): something pushed over it; restoring it`,
      'warn',
    );
  }
  const digest = await registry.pushLayout(layout, BASE_IMAGE.repository, BASE_IMAGE.tag);
  log(`${present ? 'restored' : 'seeded'} ${name} (${digest}) in the mirror`);
}
