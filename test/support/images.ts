import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { create as createTar, Parser, type ReadEntry } from 'tar';
import { runProcess } from '../../src/engines/process-runner.js';
import { MANIFEST_MEDIA_TYPES, RegistryClient } from '../../src/engines/registry/registry-client.js';
import { TOOLS } from './env.js';
import { tempDir } from './temp-dir.js';

/**
 * Builds and pushes a two-platform image (linux/amd64 + linux/arm64) with the real
 * buildctl. FROM scratch + COPY needs no emulation, so it works without qemu.
 */
export async function pushTwoPlatformImage(buildkitAddress: string, ref: string): Promise<void> {
  const context = tempDir('stv-multi-');
  writeFileSync(join(context, 'hello.txt'), 'hello from two platforms\n');
  writeFileSync(
    join(context, 'Dockerfile'),
    'FROM scratch\nCOPY hello.txt /hello.txt\nENV API_TOKEN=not-for-your-eyes GREETING=hi\n' +
      'LABEL org.opencontainers.image.title=multi\nCMD ["/hello"]\n',
  );
  await runProcess(
    TOOLS.buildctl,
    [
      '--addr',
      buildkitAddress,
      'build',
      '--frontend',
      'dockerfile.v0',
      '--local',
      `context=${context}`,
      '--local',
      `dockerfile=${context}`,
      '--opt',
      'platform=linux/amd64,linux/arm64',
      '--output',
      `type=image,name=${ref},push=true`,
    ],
    { timeoutMs: 120_000 },
  );
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

/**
 * Pushes `to` (repository:tag in the same registry): the image manifest `from` (a
 * repository and a platform manifest's digest) with one more layer holding `files`,
 * the way `FROM from` + `COPY` would make it, without a builder — for tests that only
 * need an image in a registry to scan. Answers the new manifest's digest.
 */
export async function pushImageWithFiles(
  registry: string,
  from: { repository: string; digest: string },
  to: { repository: string; tag: string },
  files: Record<string, string>,
): Promise<string> {
  const client = new RegistryClient(registry);
  const base = await client.getManifest(from.repository, from.digest);
  const config = await client.getJsonBlob<{ rootfs: { diff_ids: string[] }; history?: object[] }>(
    from.repository,
    base.json.config!.digest,
  );
  const dir = tempDir('stv-layer-');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const chunks: Buffer[] = [];
  const stream = createTar({ cwd: dir, portable: true, mtime: new Date('2026-01-01T00:00:00Z') }, Object.keys(files));
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  const tar = Buffer.concat(chunks);
  const layer = gzipSync(tar);
  const newConfig = Buffer.from(
    JSON.stringify({
      ...config,
      rootfs: { ...config.rootfs, diff_ids: [...config.rootfs.diff_ids, sha256(tar)] },
      history: [...(config.history ?? []), { created: '2026-01-01T00:00:00Z', created_by: `COPY ${Object.keys(files).join(' ')} /` }],
    }),
  );
  for (const blob of base.json.layers ?? [])
    await client.ensureBlob(to.repository, blob.digest, () => client.getBlob(from.repository, blob.digest, blob.size));
  await client.ensureBlob(to.repository, sha256(layer), async () => layer);
  await client.ensureBlob(to.repository, sha256(newConfig), async () => newConfig);
  const manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPES.ociManifest,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(newConfig), size: newConfig.length },
    layers: [
      ...(base.json.layers ?? []),
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(layer), size: layer.length },
    ],
  };
  return client.putManifest(to.repository, to.tag, Buffer.from(JSON.stringify(manifest)), MANIFEST_MEDIA_TYPES.ociManifest);
}

export interface LayerFile {
  type: string;
  linkpath?: string;
  /** The file's content, at most its first `headBytes` bytes. */
  head: Buffer;
}

/**
 * The entries `paths` (no leading `./` or `/`) of a gzipped layer tar, read with zlib
 * and node-tar's parser: type, link target and the first `headBytes` bytes of content.
 */
export async function readLayerFiles(gzipped: Buffer, paths: string[], headBytes = 64): Promise<Map<string, LayerFile>> {
  const wanted = new Set(paths);
  const found = new Map<string, LayerFile>();
  const parser = new Parser();
  parser.on('entry', (entry: ReadEntry) => {
    const path = entry.path.replace(/^\.?\//, '').replace(/\/$/, '');
    if (!wanted.has(path)) return entry.resume();
    const chunks: Buffer[] = [];
    let size = 0;
    entry.on('data', (chunk: Buffer) => {
      if (size < headBytes) chunks.push(chunk);
      size += chunk.length;
    });
    entry.on('end', () =>
      found.set(path, { type: entry.type, linkpath: entry.linkpath, head: Buffer.concat(chunks).subarray(0, headBytes) }),
    );
  });
  await new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
    parser.end(gunzipSync(gzipped));
  });
  return found;
}

/** e_machine of an ELF header (offset 18, little-endian): 0x3e x86-64, 0xb7 AArch64; undefined when not ELF. */
export function elfMachine(head: Buffer): number | undefined {
  if (head.length < 20 || head.readUInt32BE(0) !== 0x7f454c46) return undefined;
  // e_machine is in the file's own byte order (EI_DATA: 1 little, 2 big-endian, e.g. s390x).
  return head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
}
