// Writes an OCI image layout (oci-layout, index.json, blobs/sha256/...) made of an
// optional base layout's layers plus new layers from tar files: how the toolchain makes
// the stand-ins for the official images the service's own Dockerfile builds from
// (scripts/service-base-images.sh). Same approach as make-oci-layout.mjs: gzip with
// mtime 0 and a `created` from SOURCE_DATE_EPOCH, so the same inputs give the same digest.
//
// usage: node make-oci-image.mjs --out DIR --tag TAG [--base LAYOUT] [--layer TAR]...
//          [--env K=V]... [--cmd JSON] [--entrypoint JSON] [--comment TEXT]
import { createHash } from 'node:crypto';
import {
  createReadStream,
  createWriteStream,
  linkSync,
  copyFileSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

const opts = { layers: [], env: [] };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const flag = argv[i];
  const value = argv[++i];
  if (value === undefined) usage(`${flag} needs a value`);
  if (flag === '--out') opts.out = value;
  else if (flag === '--tag') opts.tag = value;
  else if (flag === '--base') opts.base = value;
  else if (flag === '--layer') opts.layers.push(value);
  else if (flag === '--env') opts.env.push(value);
  else if (flag === '--cmd') opts.cmd = JSON.parse(value);
  else if (flag === '--entrypoint') opts.entrypoint = JSON.parse(value);
  else if (flag === '--comment') opts.comment = value;
  else usage(`unknown option ${flag}`);
}
if (!opts.out || !opts.tag || opts.layers.length === 0) usage('--out, --tag and at least one --layer are required');

function usage(problem) {
  console.error(
    `make-oci-image.mjs: ${problem}\n` +
      'usage: make-oci-image.mjs --out DIR --tag TAG [--base LAYOUT] [--layer TAR]... ' +
      '[--env K=V]... [--cmd JSON] [--entrypoint JSON] [--comment TEXT]',
  );
  process.exit(2);
}

const blobs = join(opts.out, 'blobs', 'sha256');
rmSync(opts.out, { recursive: true, force: true });
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
const blobPath = (layout, digest) => join(layout, 'blobs', ...digest.split(':'));

// The base image: its manifest, config and layers (hard links when on the same disk).
let baseConfig = { architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [] }, history: [] };
let baseLayers = [];
if (opts.base) {
  const index = JSON.parse(readFileSync(join(opts.base, 'index.json'), 'utf8'));
  let manifest = JSON.parse(readFileSync(blobPath(opts.base, index.manifests[0].digest), 'utf8'));
  // A multi-platform base (the seeded debian is amd64 + arm64): the images made here
  // carry amd64 binaries, so they build on its linux/amd64 image.
  if (manifest.manifests) {
    const amd64 = manifest.manifests.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === 'amd64');
    if (!amd64) throw new Error(`${opts.base}: the base image index has no linux/amd64 image`);
    manifest = JSON.parse(readFileSync(blobPath(opts.base, amd64.digest), 'utf8'));
  }
  baseConfig = JSON.parse(readFileSync(blobPath(opts.base, manifest.config.digest), 'utf8'));
  baseLayers = manifest.layers;
  for (const layer of baseLayers) {
    const dest = blobPath(opts.out, layer.digest);
    try {
      linkSync(blobPath(opts.base, layer.digest), dest);
    } catch {
      copyFileSync(blobPath(opts.base, layer.digest), dest);
    }
  }
}

const created = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000).toISOString();
const newLayers = [];
const diffIds = [];
for (const tar of opts.layers) {
  diffIds.push(`sha256:${await sha256File(tar)}`);
  const tmp = join(blobs, 'layer.tmp');
  await pipeline(createReadStream(tar), createGzip({ level: 6 }), createWriteStream(tmp));
  const hex = await sha256File(tmp);
  renameSync(tmp, join(blobs, hex));
  newLayers.push({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${hex}`,
    size: statSync(join(blobs, hex)).size,
  });
}

// Env: the base's, with same-named variables replaced.
const env = [...(baseConfig.config?.Env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'])];
for (const pair of opts.env) {
  const name = pair.split('=')[0];
  const at = env.findIndex((e) => e.split('=')[0] === name);
  if (at >= 0) env[at] = pair;
  else env.push(pair);
}
const imageConfig = { ...(baseConfig.config ?? {}), Env: env };
if (opts.cmd) imageConfig.Cmd = opts.cmd;
if (opts.entrypoint) imageConfig.Entrypoint = opts.entrypoint;
const config = writeBlob(
  Buffer.from(
    JSON.stringify({
      created,
      architecture: baseConfig.architecture ?? 'amd64',
      os: baseConfig.os ?? 'linux',
      config: imageConfig,
      rootfs: { type: 'layers', diff_ids: [...(baseConfig.rootfs?.diff_ids ?? []), ...diffIds] },
      history: [
        ...(baseConfig.history ?? []),
        ...opts.layers.map(() => ({ created, created_by: opts.comment ?? 'stevedore scripts/make-oci-image.mjs' })),
      ],
    }),
  ),
);
const manifest = writeBlob(
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: [...baseLayers, ...newLayers],
    }),
  ),
);
writeFileSync(join(opts.out, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
writeFileSync(
  join(opts.out, 'index.json'),
  JSON.stringify(
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': opts.tag },
        },
      ],
    },
    null,
    2,
  ),
);
const bytes = [...baseLayers, ...newLayers].reduce((n, l) => n + l.size, 0);
console.log(JSON.stringify({ manifest: manifest.digest, layers: baseLayers.length + newLayers.length, compressed_bytes: bytes }));
