import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { runProcess } from '../../src/engines/process-runner.js';
import { copyImage } from '../../src/engines/registry/image-copy.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { baseLayoutDir } from '../../src/runtime/seed-base-image.js';
import { waitForJob } from '../support/build-helpers.js';
import { CACHE_DIR, TOOLS } from '../support/env.js';
import { startSeededRegistry, type StartedRegistry } from '../support/services.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

process.env.STV_MULTI_KEY_PASSWORD = `multi-${Date.now()}`;
const BOTH = ['linux/amd64', 'linux/arm64'];

/** The platform manifests an index lists (attestation manifests left out), sorted by platform. */
async function platformsOf(client: RegistryClient, repository: string, reference: string) {
  const index = await client.getManifest(repository, reference);
  assert.ok(index.json.manifests, `${repository}:${reference} is not an index`);
  return index.json.manifests
    .filter((d) => d.platform && d.platform.os !== 'unknown')
    .map((d) => ({ platform: [d.platform!.os, d.platform!.architecture, d.platform!.variant].filter(Boolean).join('/'), digest: d.digest }))
    .sort((a, b) => a.platform.localeCompare(b.platform));
}

const byPlatform = <T extends { platform: string }>(items: T[]) => [...items].sort((a, b) => a.platform.localeCompare(b.platform));

/**
 * Issue 16: every platform of a multi-platform image is signed and attested, verify says
 * so per platform, and a copy to another registry keeps all of it. Real buildkitd (arm64
 * under QEMU), registries, Trivy (test DB) and cosign.
 */
describe('multi-platform supply chain: sign, attest and verify every platform; a copy keeps it', () => {
  let stack: Stack;
  let other: StartedRegistry;
  let server: any;
  const job = async (body: object) => waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send(body).expect(202)).body.id);
  /** How long a job ran, for the diagnostics (figures, not checks). */
  const took = (j: any) => `${((Date.parse(j.finished_at) - Date.parse(j.started_at)) / 1000).toFixed(1)} s`;
  const verify = async (image: string, t?: { diagnostic(m: string): void }) => {
    const done = await job({ action: 'verify', image });
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    t?.diagnostic(`verify ${image}: ${took(done)}`);
    return done.result.verification;
  };
  const cosignEnv = { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: process.env.STV_MULTI_KEY_PASSWORD };
  let releaseKey: string;

  before(async () => {
    const keysDir = tempDir('stv-multi-keys-');
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], { env: cosignEnv });
    releaseKey = join(keysDir, 'release.key');
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify({ keys: [{ name: 'release', key: releaseKey, password_env: 'STV_MULTI_KEY_PASSWORD' }] }));
    other = await startSeededRegistry();
    stack = await startStack({
      buildkit: true,
      overrides: {
        signing: { offline: true, keysFile },
        trivy: { cacheDir: await makeTrivyCache(), dbUpdate: false },
        registryAllowedHosts: [other.address],
      },
    });
    server = stack.app.getHttpServer();
  });
  after(async () => {
    await other?.container.stop();
    await stack?.stop();
  });

  /** Index and both platforms signed; `attested`: both platforms carry cyclonedx and vuln. */
  const assertSigned = (v: any, platforms: { platform: string; digest: string }[]) => {
    assert.equal(v.verified, true, JSON.stringify(v));
    assert.deepEqual(
      byPlatform(v.platforms).map((p: any) => [p.platform, p.digest, p.verified]),
      platforms.map((p) => [p.platform, p.digest, true]),
    );
  };
  const assertAttested = (v: any) => {
    for (const p of v.platforms)
      assert.deepEqual(
        p.attestations.map((a: any) => [a.type, a.verified]),
        [
          ['cyclonedx', true],
          ['vuln', true],
        ],
        `${p.platform}: ${JSON.stringify(p.attestations)}`,
      );
    assert.deepEqual(
      v.attestations.map((a: any) => [a.type, a.verified]),
      [
        ['cyclonedx', true],
        ['vuln', true],
      ],
    );
  };

  it('a two-platform pipeline signs and attests each platform; verify and a copy in another registry say so', async (t) => {
    const tag = `${stack.registry.address}/team/multi:1`;
    const built = await job({
      action: 'build',
      dockerfile_inline: 'FROM debian:bookworm-slim\nRUN echo signed > /built-by\n',
      platforms: BOTH,
      tags: [tag],
      scan: { policy: { ignore_unfixed: true } },
      sign: true,
    });
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
    t.diagnostic(`pipeline ${built.result.stages.map((s: any) => `${s.name} ${(s.duration_ms / 1000).toFixed(1)} s`).join(', ')}`);
    assert.deepEqual(
      built.result.stages.map((s: any) => s.name),
      ['build', 'scan', 'gate', 'sign', 'attest'],
    );
    const index = built.result.build.digest;
    const platforms = await platformsOf(new RegistryClient(stack.registry.address), 'team/multi', index);
    assert.deepEqual(
      platforms.map((p) => p.platform),
      BOTH,
    );
    assert.equal(built.result.signed.digest, index);
    assert.deepEqual(byPlatform(built.result.signed.platforms), platforms);

    const here = await verify(tag, t);
    assertSigned(here, platforms);

    const mirror = `${other.address}/mirror/multi:1`;
    const pushed = await job({ action: 'push', image: tag, destinations: [mirror] });
    assert.equal(pushed.state, 'succeeded', JSON.stringify(pushed.error));
    t.diagnostic(`push to the second registry: ${took(pushed)}`);
    assert.deepEqual(pushed.result.pushed, [{ reference: mirror, digest: index }]);
    const there = await verify(mirror, t);
    assert.equal(there.digest, index);
    assertSigned(there, platforms);

    // Attestations: per platform as scanned (one entry per platform once scan covers all).
    assert.deepEqual(built.result.attestations, ['cyclonedx', 'vuln']);
    assert.deepEqual(
      byPlatform(built.result.attested),
      platforms.map((p) => ({ ...p, types: ['cyclonedx', 'vuln'] })),
    );
    assertAttested(here);
    assertAttested(there);
  });

  it('sign of an index lists its platforms, and each verifies; a single-platform image is signed as before', async () => {
    const image = `${stack.registry.address}/library/debian:bookworm-slim`;
    const client = new RegistryClient(stack.registry.address);
    const index = await client.manifestDigest('library/debian', 'bookworm-slim');
    const platforms = await platformsOf(client, 'library/debian', 'bookworm-slim');
    // One platform's manifest alone (copied before anything is signed), for the end.
    const amd64 = platforms.find((p) => p.platform === 'linux/amd64')!.digest;
    await copyImage({ client, repository: 'library/debian' }, { client, repository: 'team/amd64-only' }, amd64, '1');

    const signed = await job({ action: 'sign', image });
    assert.equal(signed.state, 'succeeded', JSON.stringify(signed.error));
    assert.deepEqual(
      { ...signed.result.signed, platforms: byPlatform(signed.result.signed.platforms) },
      { reference: `${stack.registry.address}/library/debian@${index}`, digest: index, key: 'release', platforms },
    );
    const v = await verify(image);
    assertSigned(v, platforms);
    // Nothing attested this image: each platform says so, and so does the summary.
    for (const p of v.platforms)
      assert.ok(
        p.attestations.every((a: any) => !a.verified && a.reason),
        JSON.stringify(p),
      );
    assert.ok(v.attestations.every((a: any) => !a.verified && /linux\/amd64/.test(a.reason) && /linux\/arm64/.test(a.reason)));

    // One platform's manifest alone: no index, no platform list, verified as one image.
    const single = await job({ action: 'sign', image: `${stack.registry.address}/team/amd64-only:1` });
    assert.deepEqual(single.result.signed, {
      reference: `${stack.registry.address}/team/amd64-only@${amd64}`,
      digest: amd64,
      key: 'release',
    });
    const sv = await verify(`${stack.registry.address}/team/amd64-only:1`);
    assert.equal(sv.verified, true, JSON.stringify(sv));
    assert.equal(sv.platforms, undefined);
    assert.deepEqual(sv.signatures, [{ key: 'release', digest: amd64 }]);
  });

  it('an index whose arm64 manifest is unsigned does not verify, naming that platform', async () => {
    const client = new RegistryClient(stack.registry.address);
    // From the seed's layout: no signatures come with it.
    const index = await client.pushLayout(baseLayoutDir(CACHE_DIR), 'team/half', '1');
    const platforms = await platformsOf(client, 'team/half', '1');
    const amd64 = platforms.find((p) => p.platform === 'linux/amd64')!.digest;
    // The seed labels its arm64 manifest linux/arm64/v8.
    const arm64 = platforms.find((p) => p.platform.startsWith('linux/arm64'))!;
    // The release key signs the index and its amd64 manifest, each alone (no --recursive).
    for (const digest of [index, amd64])
      await runProcess(
        TOOLS.cosign,
        [
          'sign',
          '--key',
          releaseKey,
          '--yes',
          '--tlog-upload=false',
          '--use-signing-config=false',
          '--allow-http-registry=true',
          `${stack.registry.address}/team/half@${digest}`,
        ],
        { env: cosignEnv },
      );
    const v = await verify(`${stack.registry.address}/team/half:1`);
    assert.equal(v.verified, false, JSON.stringify(v));
    assert.deepEqual(v.signatures, [{ key: 'release', digest: index }], 'the index itself is signed');
    assert.match(v.reason, new RegExp(`${arm64.platform} ${arm64.digest}`));
    assert.doesNotMatch(v.reason, /linux\/amd64/);
    const [a, b]: any[] = byPlatform(v.platforms);
    assert.deepEqual(
      [a.platform, a.verified, b.platform, b.digest, b.verified],
      ['linux/amd64', true, arm64.platform, arm64.digest, false],
    );
    assert.match(b.reason, /signature/i);
  });
});
