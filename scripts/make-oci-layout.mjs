// Turns root filesystem tarballs, one per platform, into an OCI image layout
// (oci-layout, index.json, blobs/sha256/...) holding an image index with one
// single-layer image per platform: the seeded base image that stevedore pushes into
// its registry. The layout's index.json names that image index with the tag.
// Usage: node make-oci-layout.mjs OUTDIR TAG OS/ARCH=ROOTFS.tar...
// Prints {index, platforms: {OS/ARCH: {manifest, layer, layer_bytes, rootfs_bytes}}}.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';

const [outDir, tag, ...specs] = process.argv.slice(2);
const platforms = specs.map((spec) => {
  const m = /^([a-z0-9]+)\/([a-z0-9]+)(?:\/([a-z0-9]+))?=(.+)$/.exec(spec);
  return m && { os: m[1], architecture: m[2], variant: m[3], tar: m[4] };
});
if (!outDir || !tag || platforms.length === 0 || platforms.some((p) => !p)) {
  console.error('usage: make-oci-layout.mjs OUTDIR TAG OS/ARCH=ROOTFS.tar...');
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

const created = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000).toISOString();
const images = [];
const report = {};
for (const { os, architecture, variant, tar } of platforms) {
  const name = [os, architecture, variant].filter(Boolean).join('/');
  const diffId = await sha256File(tar);
  const gzPath = join(blobs, 'layer.tmp');
  // mtime 0 in the gzip header keeps the layer digest reproducible for the same rootfs.
  await pipeline(createReadStream(tar), createGzip({ level: 9 }), createWriteStream(gzPath));
  const layerHex = await sha256File(gzPath);
  renameSync(gzPath, join(blobs, layerHex));
  const layer = {
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${layerHex}`,
    size: statSync(join(blobs, layerHex)).size,
  };
  const config = writeBlob(
    Buffer.from(
      JSON.stringify({
        created,
        architecture,
        os,
        ...(variant ? { variant } : {}),
        config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['bash'] },
        rootfs: { type: 'layers', diff_ids: [`sha256:${diffId}`] },
        history: [{ created, created_by: `debootstrap --variant=minbase --arch=${architecture} (stevedore scripts/base-image.sh)` }],
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
  images.push({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    ...manifest,
    platform: { architecture, os, ...(variant ? { variant } : {}) },
  });
  report[name] = { manifest: manifest.digest, layer: layer.digest, layer_bytes: layer.size, rootfs_bytes: statSync(tar).size };
}
const index = writeBlob(
  Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: images })),
);
writeFileSync(join(outDir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(
  join(outDir, 'index.json'),
  JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { mediaType: 'application/vnd.oci.image.index.v1+json', ...index, annotations: { 'org.opencontainers.image.ref.name': tag } },
      ],
    },
    null,
    2,
  ),
);
console.log(JSON.stringify({ index: index.digest, platforms: report }));
