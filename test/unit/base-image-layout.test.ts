import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { create } from 'tar';
import { runProcess } from '../../src/engines/process-runner.js';
import { BASE_LAYOUT_VERSION, baseLayoutDir, layoutDigest } from '../../src/runtime/seed-base-image.js';
import { PROJECT_DIR } from '../support/env.js';
import { loadConfig } from '../../src/config/config.js';

/** scripts/make-oci-layout.mjs (the seeded base's layout) and the layout version the service looks for. */
describe('the base image layout', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stevedore-layout-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const blob = (digest: string) => JSON.parse(readFileSync(join(dir, 'out', 'blobs', 'sha256', digest.slice(7)), 'utf8'));

  it('is the version scripts/versions.env gives scripts/base-image.sh', () => {
    const env = readFileSync(join(PROJECT_DIR, 'scripts', 'versions.env'), 'utf8');
    assert.equal(/^BASE_LAYOUT_VERSION=(\d+)$/m.exec(env)?.[1], String(BASE_LAYOUT_VERSION));
    assert.equal(baseLayoutDir('/c'), `/c/base/debian-bookworm-minbase-v${BASE_LAYOUT_VERSION}`);
  });

  it('names the same cache directory as scripts/lib.sh for every platform set', async () => {
    const sets = [
      'linux/amd64,linux/arm64',
      'linux/arm64,linux/amd64',
      'linux/amd64',
      'linux/amd64,linux/arm64,linux/s390x,linux/arm/v7',
      'linux/amd64,linux/ppc64le,linux/386,linux/mips64le',
    ];
    for (const set of sets) {
      const run = await runProcess('bash', ['-c', 'source scripts/lib.sh && echo "$BASE_LAYOUT_DIR"'], {
        cwd: PROJECT_DIR,
        env: { ...process.env, STEVEDORE_CACHE_DIR: '/c', STEVEDORE_BASE_PLATFORMS: set },
      });
      assert.equal(run.stdout.trim(), baseLayoutDir('/c', set.split(',')), set);
    }
    assert.equal(baseLayoutDir('/c', ['linux/amd64', 'linux/arm64']), baseLayoutDir('/c'));
  });

  it('refuses base platforms Debian bookworm has no architecture for, and a set without linux/amd64', () => {
    const env = { STEVEDORE_TOKEN: 'a-long-enough-token-123' };
    assert.deepEqual(loadConfig({ ...env, STEVEDORE_BASE_PLATFORMS: 'linux/amd64, linux/s390x' }).basePlatforms, [
      'linux/amd64',
      'linux/s390x',
    ]);
    assert.throws(() => loadConfig({ ...env, STEVEDORE_BASE_PLATFORMS: 'linux/amd64,linux/riscv64' }), /STEVEDORE_BASE_PLATFORMS/);
    assert.throws(() => loadConfig({ ...env, STEVEDORE_BASE_PLATFORMS: 'linux/arm64' }), /linux\/amd64/);
  });

  it('is an image index with one image per platform, named by the tag', async () => {
    for (const arch of ['amd64', 'arm64']) {
      writeFileSync(join(dir, `${arch}.txt`), `made for ${arch}\n`);
      await create({ cwd: dir, file: join(dir, `${arch}.tar`), portable: true }, [`${arch}.txt`]);
    }
    const args = ['scripts/make-oci-layout.mjs', join(dir, 'out'), 'bookworm-slim'];
    const run = await runProcess(process.execPath, [...args, `linux/amd64=${dir}/amd64.tar`, `linux/arm64/v8=${dir}/arm64.tar`], {
      cwd: PROJECT_DIR,
      env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' },
    });
    const printed = JSON.parse(run.stdout) as { index: string; platforms: Record<string, { manifest: string; layer: string }> };

    const top = JSON.parse(readFileSync(join(dir, 'out', 'index.json'), 'utf8'));
    assert.equal(top.manifests.length, 1);
    assert.equal(top.manifests[0].mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(top.manifests[0].annotations['org.opencontainers.image.ref.name'], 'bookworm-slim');
    assert.equal(await layoutDigest(join(dir, 'out')), printed.index);

    const index = blob(printed.index);
    assert.deepEqual(
      index.manifests.map((m: { platform: unknown }) => m.platform),
      [
        { architecture: 'amd64', os: 'linux' },
        { architecture: 'arm64', os: 'linux', variant: 'v8' },
      ],
    );
    for (const [i, name] of ['linux/amd64', 'linux/arm64/v8'].entries()) {
      const manifest = blob(index.manifests[i].digest);
      assert.equal(index.manifests[i].digest, printed.platforms[name]!.manifest);
      assert.equal(manifest.layers[0].digest, printed.platforms[name]!.layer);
      const config = blob(manifest.config.digest);
      assert.equal(config.architecture, index.manifests[i].platform.architecture);
      assert.equal(config.created, new Date(1700000000 * 1000).toISOString());
    }
    assert.notEqual(index.manifests[0].digest, index.manifests[1].digest);
  });
});
