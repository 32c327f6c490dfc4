import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { BASE_IMAGE, baseLayoutDir, layoutDigest, seedBaseImage } from '../../src/runtime/seed-base-image.js';
import { BASE_PLATFORMS, CACHE_DIR } from '../support/env.js';
import { elfMachine, readLayerFiles } from '../support/images.js';
import { startSeededRegistry, type StartedRegistry } from '../support/services.js';

const ELF_MACHINE: Record<string, number> = { amd64: 0x3e, arm64: 0xb7, arm: 0x28, ppc64le: 0x15, s390x: 0x16, 386: 0x03, mips64le: 0x08 };

/**
 * The seeded base is an index of a real linux/amd64 and a real linux/arm64 image; and
 * serve's base-image check against a real registry: a library/debian:bookworm-slim that
 * is not the image made here (someone pushed over it) is restored in serve's own
 * registry, and only reported in one the operator runs.
 */
describe('seeding the base image', () => {
  let registry: StartedRegistry;
  let client: RegistryClient;
  let expected: string;
  const { repository, tag } = BASE_IMAGE;

  /** Pushes another manifest (the base with an annotation) over the tag; returns its digest. */
  const tamper = async (note: string) => {
    const manifest = await client.getManifest(repository, tag);
    const bytes = Buffer.from(JSON.stringify({ ...manifest.json, annotations: { 'org.example.tampered': note } }));
    const digest = await client.putManifest(repository, tag, bytes, manifest.mediaType);
    assert.notEqual(digest, expected);
    assert.equal(await client.manifestDigest(repository, tag), digest);
    return digest;
  };

  before(async () => {
    registry = await startSeededRegistry();
    client = new RegistryClient(registry.address);
    expected = (await layoutDigest(baseLayoutDir(CACHE_DIR, BASE_PLATFORMS)))!;
    assert.match(expected, /^sha256:[0-9a-f]{64}$/);
  });
  after(async () => {
    await registry?.container.stop();
  });

  it('finds the seeded tag at the digest of the OCI layout', async () => {
    assert.equal(await client.manifestDigest(repository, tag), expected);
    const lines: string[] = [];
    await seedBaseImage(client, CACHE_DIR, (m) => lines.push(m), { required: true, platforms: BASE_PLATFORMS });
    assert.deepEqual(lines, [], 'nothing to do, nothing said');
  });

  it('is an index of an image per base platform (linux/amd64, linux/arm64, …) whose /bin/sh is built for that machine', async () => {
    const index = await client.getManifest(repository, tag);
    assert.equal(index.mediaType, 'application/vnd.oci.image.index.v1+json');
    const platforms = (index.json.manifests ?? []).map((m) => `${m.platform?.os}/${m.platform?.architecture}`);
    const wanted = BASE_PLATFORMS.map((p) => p.split('/').slice(0, 2).join('/'));
    assert.deepEqual([...platforms].sort(), [...wanted].sort());
    for (const descriptor of index.json.manifests ?? []) {
      const arch = descriptor.platform!.architecture;
      const image = await client.getManifest(repository, descriptor.digest);
      const config = await client.getJsonBlob<{ architecture: string; os: string }>(repository, image.json.config!.digest);
      assert.deepEqual([config.os, config.architecture], ['linux', arch]);
      assert.equal(image.json.layers?.length, 1);
      const [layer] = image.json.layers;
      assert.ok(layer);
      const files = await readLayerFiles(await client.getBlob(repository, layer.digest, layer.size), [
        'bin',
        'bin/sh',
        'usr/bin/sh',
        'usr/bin/dash',
      ]);
      // bookworm merges /usr: /bin is a link to usr/bin, and sh a link to dash.
      const bin = files.get('bin');
      const sh = bin?.type === 'SymbolicLink' && bin.linkpath === 'usr/bin' ? files.get('usr/bin/sh') : files.get('bin/sh');
      assert.equal(sh?.type, 'SymbolicLink', `${arch}: /bin/sh is ${JSON.stringify(sh)}`);
      assert.equal(sh.linkpath, 'dash');
      const dash = files.get('usr/bin/dash');
      assert.ok(dash, `${arch}: no usr/bin/dash in the layer`);
      assert.equal(
        elfMachine(dash.head),
        ELF_MACHINE[arch],
        `${arch}: /usr/bin/dash has e_machine 0x${elfMachine(dash.head)?.toString(16)}, not 0x${ELF_MACHINE[arch]?.toString(16)}`,
      );
    }
  });

  it("restores serve's own registry with a warning when the tag points elsewhere", async () => {
    const tampered = await tamper('restore-me');
    const lines: { message: string; level?: string }[] = [];
    await seedBaseImage(client, CACHE_DIR, (message, level) => lines.push({ message, level }), {
      required: true,
      platforms: BASE_PLATFORMS,
    });
    assert.equal(await client.manifestDigest(repository, tag), expected);
    const warning = lines.find((l) => l.level === 'warn');
    assert.ok(warning, JSON.stringify(lines));
    assert.ok(warning.message.includes(tampered) && warning.message.includes(expected), warning.message);
    assert.ok(
      lines.some((l) => /^restored library\/debian:bookworm-slim/.test(l.message)),
      JSON.stringify(lines),
    );
  });

  it("only reports a different image in a registry the operator runs (it may be Docker Hub's own)", async () => {
    const other = await tamper('operator');
    const lines: { message: string; level?: string }[] = [];
    await seedBaseImage(client, CACHE_DIR, (message, level) => lines.push({ message, level }), {
      required: false,
      platforms: BASE_PLATFORMS,
    });
    assert.equal(await client.manifestDigest(repository, tag), other);
    assert.equal(lines.length, 1);
    assert.equal(lines[0]!.level, 'warn');
    // Back to the base for anything else using this registry.
    await seedBaseImage(client, CACHE_DIR, () => undefined, { required: true, platforms: BASE_PLATFORMS });
    assert.equal(await client.manifestDigest(repository, tag), expected);
  });
});
