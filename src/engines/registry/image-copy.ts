import { MANIFEST_MEDIA_TYPES, RegistryError, type RegistryClient } from './registry-client.js';

const INDEX_TYPES = new Set<string>([MANIFEST_MEDIA_TYPES.ociIndex, MANIFEST_MEDIA_TYPES.dockerList]);

export interface CopyEnd {
  client: RegistryClient;
  repository: string;
}

/**
 * Copies an image between repositories (and registries) through the distribution API:
 * every platform's manifest and blobs byte for byte, so the digest is kept, and then
 * its signatures and attestations. cosign stores those under the referrers tag schema
 * (`sha256-<hex>`, and `.sig` / `.att` in its older layout), which is copied the same
 * way. Written here rather than calling another tool: the API is small, and this
 * copies exactly what the registry in use (distribution 2.8, no referrers API) holds.
 */
export async function copyImage(from: CopyEnd, to: CopyEnd, reference: string, tag?: string): Promise<string> {
  const digest = await copyManifest(from, to, reference);
  const top = await from.client.getManifest(from.repository, digest);
  if (tag) await to.client.putManifest(to.repository, tag, top.bytes, top.mediaType);
  await copyReferrers(from, to, digest, new Set());
  for (const child of top.json.manifests ?? []) await copyReferrers(from, to, child.digest, new Set());
  return digest;
}

/** Copies a manifest (recursively for an index) by digest; returns its digest. */
async function copyManifest(from: CopyEnd, to: CopyEnd, reference: string): Promise<string> {
  const manifest = await from.client.getManifest(from.repository, reference);
  if (INDEX_TYPES.has(manifest.mediaType) || manifest.json.manifests) {
    for (const child of manifest.json.manifests ?? []) await copyManifest(from, to, child.digest);
  } else {
    const blobs = [manifest.json.config, ...(manifest.json.layers ?? [])].filter((b): b is NonNullable<typeof b> => !!b);
    for (const blob of blobs)
      await to.client.ensureBlob(to.repository, blob.digest, () => from.client.getBlob(from.repository, blob.digest, blob.size));
  }
  const stored = await to.client.putManifest(to.repository, manifest.digest, manifest.bytes, manifest.mediaType);
  if (stored && stored !== manifest.digest) throw new RegistryError('protocol', `destination stored ${manifest.digest} as ${stored}`);
  return manifest.digest;
}

async function copyReferrers(from: CopyEnd, to: CopyEnd, digest: string, seen: Set<string>): Promise<void> {
  if (seen.has(digest)) return;
  seen.add(digest);
  const hex = digest.replace(':', '-');
  for (const tag of [hex, `${hex}.sig`, `${hex}.att`]) {
    const present = await from.client.manifestDigest(from.repository, tag);
    if (!present) continue;
    const copied = await copyManifest(from, to, present);
    const manifest = await from.client.getManifest(from.repository, copied);
    await to.client.putManifest(to.repository, tag, manifest.bytes, manifest.mediaType);
    // Attestations can be signed in turn.
    for (const child of manifest.json.manifests ?? []) await copyReferrers(from, to, child.digest, seen);
  }
}
