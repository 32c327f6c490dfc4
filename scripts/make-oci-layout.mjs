// Turns a root filesystem tarball into a single-layer OCI image layout
// (oci-layout, index.json, blobs/sha256/...): the seeded base image that
// stevedore pushes into its registry. Usage: node make-oci-layout.mjs ROOTFS.tar OUTDIR TAG
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { createWriteStream, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';

const [rootfsTar, outDir, tag] = process.argv.slice(2);
if (!rootfsTar || !outDir || !tag) {
  console.error('usage: make-oci-layout.mjs ROOTFS.tar OUTDIR TAG');
  process.exit(2);
}
const blobs = join(outDir, 'blobs', 'sha256');
mkdirSync(blobs, { recursive: true });

async function sha256File(path) {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}
function writeBlob(bytes) {
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(blobs, hex), bytes);
  return { digest: `sha256:${hex}`, size: bytes.length };
}

const diffId = await sha256File(rootfsTar);
const gzPath = join(blobs, 'layer.tmp');
// mtime 0 in the gzip header keeps the layer digest reproducible for the same rootfs.
await pipeline(createReadStream(rootfsTar), createGzip({ level: 9 }), createWriteStream(gzPath));
const layerHex = await sha256File(gzPath);
renameSync(gzPath, join(blobs, layerHex));
const layer = {
  mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  digest: `sha256:${layerHex}`,
  size: statSync(join(blobs, layerHex)).size,
};

const created = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000).toISOString();
const config = writeBlob(
  Buffer.from(
    JSON.stringify({
      created,
      architecture: 'amd64',
      os: 'linux',
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
      rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
      history: [{ created, created_by: 'debootstrap --variant=minbase (stevedore scripts/base-image.sh)' }],
    }),
  ),
);
const manifest = writeBlob(
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [layer],
    }),
  ),
);
writeFileSync(join(outDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(
  join(outDir, 'index.json'),
  JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } },
      ],
    },
    null,
    2,
  ),
);
rmSync(gzPath, { force: true });
console.log(JSON.stringify({ manifest: manifest.digest, layer_bytes: layer.size, rootfs_bytes: statSync(rootfsTar).size }));
