import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { ChildProcessRunner, runProcess } from '../../src/engines/process-runner.js';
import { readToolVersions } from '../../src/engines/versions/tool-versions.js';
import { TOOLS } from '../support/env.js';
import { startBuildkitd, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { tempDir } from '../support/temp-dir.js';

describe('pinned tools', () => {
  it('report the pinned versions', async () => {
    const versions = await readToolVersions(new ChildProcessRunner(), TOOLS);
    assert.deepEqual(versions, { buildctl: 'v0.32.2', trivy: '0.74.0', cosign: 'v3.1.2' });
    const { stdout } = await runProcess(TOOLS.buildkitd, ['--version']);
    assert.match(stdout, /buildkitd github\.com\/moby\/buildkit v0\.32\.2/);
  });
});

describe('buildctl through the docker.io mirror', () => {
  let registry: StartedRegistry;
  let buildkitd: StartedBuildkitd;
  before(async () => {
    registry = await startSeededRegistry();
    buildkitd = await startBuildkitd(registry.address);
  });
  after(async () => {
    await buildkitd?.stop();
    await registry?.container.stop();
  });

  it('builds FROM debian:bookworm-slim with a RUN step and pushes to the registry', async () => {
    const context = tempDir('stv-ctx-');
    const marker = `built-by-stevedore-${Date.now()}`;
    writeFileSync(join(context, 'Dockerfile'), `FROM debian:bookworm-slim\nRUN echo ${marker} > /marker && cat /etc/debian_version\n`);
    const ref = `${registry.address}/smoke/app:1`;
    await runProcess(
      TOOLS.buildctl,
      [
        '--addr',
        buildkitd.address,
        'build',
        '--frontend',
        'dockerfile.v0',
        '--local',
        `context=${context}`,
        '--local',
        `dockerfile=${context}`,
        '--output',
        `type=image,name=${ref},push=true`,
      ],
      { timeoutMs: 300_000 },
    );

    // The pushed image's top layer holds the file the RUN step wrote.
    const base = `http://${registry.address}/v2/smoke/app`;
    const manifest = (await (
      await fetch(`${base}/manifests/1`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' },
      })
    ).json()) as { layers: { digest: string }[] };
    assert.equal(manifest.layers.length, 2, 'base layer + RUN layer');
    const top = Buffer.from(await (await fetch(`${base}/blobs/${manifest.layers[1]!.digest}`)).arrayBuffer());
    const tar = gunzipSync(top).toString('latin1');
    assert.ok(tar.includes('marker'), 'RUN layer contains /marker');
    assert.ok(tar.includes(marker), 'with the content the RUN step wrote');
  });
});
