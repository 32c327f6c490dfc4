import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { RegistryClient } from '../engines/registry/registry-client.js';

export const BASE_IMAGE = { repository: 'library/debian', tag: 'bookworm-slim' } as const;

/** Where scripts/base-image.sh leaves the OCI layout of the debootstrapped base. */
export function baseLayoutDir(cacheDir: string): string {
  return join(cacheDir, 'base', 'debian-bookworm-minbase');
}

/**
 * Makes sure the mirror registry holds library/debian:bookworm-slim, pushing the
 * locally made base image when it does not. Required for the embedded registry;
 * best effort for one the operator runs.
 */
export async function seedBaseImage(registry: RegistryClient, cacheDir: string, log: (m: string) => void, options: { required: boolean }): Promise<void> {
  const present = await registry.manifestDigest(BASE_IMAGE.repository, BASE_IMAGE.tag).catch((err: Error) => {
    if (options.required) throw err;
    log(`cannot check the base image in the mirror: ${err.message}`);
    return 'unknown';
  });
  if (present) return;
  const layout = baseLayoutDir(cacheDir);
  if (!existsSync(join(layout, 'index.json'))) {
    const message = `base image layout missing at ${layout}: run \`npm run setup\` (scripts/base-image.sh) first`;
    if (options.required) throw new Error(message);
    log(message);
    return;
  }
  const digest = await registry.pushLayout(layout, BASE_IMAGE.repository, BASE_IMAGE.tag);
  log(`seeded ${BASE_IMAGE.repository}:${BASE_IMAGE.tag} (${digest}) into the mirror`);
}
