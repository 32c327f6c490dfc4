import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { makeTrivyCache, type TestDbVariant } from './trivy-db.js';

/*
 * The test DB as Trivy downloads it: an OCI artifact whose single layer
 * (application/vnd.aquasec.trivy.db.layer.v1.tar+gzip, titled db.tar.gz) is a tar.gz of
 * trivy.db and metadata.json (trivy pkg/db and pkg/oci), pushed to a loopback registry.
 */

export const DB_LAYER_MEDIA_TYPE = 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip';
const CONFIG_MEDIA_TYPE = 'application/vnd.aquasec.trivy.config.v1+json';

/** A cache dir holding a DB, or which test DB to make one of (makeTrivyCache). */
export type DbSource = string | { variant: TestDbVariant };

const cacheDirOf = async (source: DbSource) => (typeof source === 'string' ? source : makeTrivyCache({ variant: source.variant }));

/**
 * A tar.gz of `<cacheDir>/db`'s two files, the way PUT /v1/system/trivy-db and the
 * artifact take it; `{variant: 2}` makes the test DB of that variant first.
 */
export async function dbTarGz(source: DbSource): Promise<Buffer> {
  const cacheDir = await cacheDirOf(source);
  const chunks: Buffer[] = [];
  const stream = createTar({ gzip: true, cwd: join(cacheDir, 'db'), portable: true }, ['trivy.db', 'metadata.json']);
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** Rewrites the DB's metadata.json (e.g. another UpdatedAt, a NextUpdate in the past). */
export function setDbMetadata(cacheDir: string, fields: Record<string, unknown>): void {
  const file = join(cacheDir, 'db', 'metadata.json');
  writeFileSync(file, JSON.stringify({ ...JSON.parse(readFileSync(file, 'utf8')), ...fields }));
}

const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/** Pushes the DB in `source` (a cache dir, or a test DB variant) to registry/repository:tag; answers the manifest digest. */
export async function pushDbArtifact(registry: string, repository: string, tag: string, source: DbSource): Promise<string> {
  const client = new RegistryClient(registry);
  const layer = await dbTarGz(source);
  const config = Buffer.from('{}');
  await client.ensureBlob(repository, digestOf(config), async () => config);
  await client.ensureBlob(repository, digestOf(layer), async () => layer);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: CONFIG_MEDIA_TYPE, digest: digestOf(config), size: config.length },
      layers: [
        {
          mediaType: DB_LAYER_MEDIA_TYPE,
          digest: digestOf(layer),
          size: layer.length,
          annotations: { 'org.opencontainers.image.title': 'db.tar.gz' },
        },
      ],
    }),
  );
  return client.putManifest(repository, tag, manifest, 'application/vnd.oci.image.manifest.v1+json');
}
