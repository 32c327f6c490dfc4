import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { CROSS_DOCKERFILE, EMULATED_DOCKERFILE, HELLO_C, HELLO_PLATFORMS } from '../support/hello-c.js';
import { elfMachine, readLayerFiles } from '../support/images.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

const X86_64 = 62;
const AARCH64 = 183;
/** A step BuildKit runs for linux/arm64, e.g. `[linux/arm64 2/4] RUN …` (not `[linux/amd64->arm64 build …]`). */
const ARM64_STEP = /^\[linux\/arm64[ \]]/;
const BINARIES = ['usr/local/bin/hello', 'usr/local/bin/hello-static'];
// The emulated arm64 apt-get install runs under QEMU: minutes, not seconds.
const BUILD_TIMEOUT_MS = 900_000;

/** qemu-user for AArch64 as installed by qemu-user-static (…-static) or qemu-user. */
function qemuAarch64(): string {
  for (const dir of (process.env.PATH ?? '').split(delimiter).concat('/usr/bin')) {
    for (const name of ['qemu-aarch64-static', 'qemu-aarch64']) if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  throw new Error('qemu-aarch64 is not installed (scripts/install-system.sh installs qemu-user-static)');
}

describe('a C program built for linux/amd64 + linux/arm64 on a real buildkitd', () => {
  let stack: Stack;
  let server: any;
  let registry: RegistryClient;
  const build = (body: object) =>
    request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'build', provenance: false, platforms: HELLO_PLATFORMS, ...body });

  before(async () => {
    stack = await startStack({ buildkit: true });
    server = stack.app.getHttpServer();
    registry = new RegistryClient(stack.registry.address);
  });
  after(async () => stack?.stop());

  async function buildHello(dockerfile: string, repo: string): Promise<any> {
    const upload = await uploadContext(server, await tarGz({ Dockerfile: dockerfile, 'hello.c': HELLO_C }));
    assert.ok([200, 201].includes(upload.status), JSON.stringify(upload.body));
    const submitted = await build({ context: { upload: upload.body.digest }, tags: [`${stack.registry.address}/${repo}:1`] }).expect(202);
    return waitForJob(server, submitted.body.id, undefined, BUILD_TIMEOUT_MS);
  }

  /** The manifest of each platform of the pushed index, by architecture. */
  async function variants(repo: string): Promise<Map<string, { layers: { digest: string; size: number }[] }>> {
    const index = await registry.getManifest(repo, '1');
    assert.ok(index.json.manifests, `an index: ${JSON.stringify(index.json)}`);
    const out = new Map<string, { layers: { digest: string; size: number }[] }>();
    for (const m of index.json.manifests) {
      if (!m.platform || m.platform.architecture === 'unknown') continue; // attestation manifests, if any
      const manifest = await registry.getManifest(repo, m.digest);
      out.set(m.platform.architecture, { layers: manifest.json.layers! });
    }
    assert.deepEqual([...out.keys()].sort(), ['amd64', 'arm64']);
    return out;
  }

  /** Extracts a layer blob (tar.gz) into a directory with the system tar. */
  async function extractLayer(repo: string, layer: { digest: string; size: number }, dir: string): Promise<void> {
    const file = join(tempDir('stv-layer-'), 'layer.tar.gz');
    writeFileSync(file, await registry.getBlob(repo, layer.digest, layer.size));
    mkdirSync(dir, { recursive: true });
    await runProcess('tar', ['-xzf', file, '-C', dir, '--no-same-owner', '--exclude=./dev', '--exclude=dev']);
  }

  /** Checks the binaries' ELF machines per platform and returns the extracted arm64 top layer. */
  async function checkBinaries(repo: string): Promise<{ arm64Top: string; arm64Base: { digest: string; size: number } }> {
    const byArch = await variants(repo);
    for (const [arch, machine] of [
      ['amd64', X86_64],
      ['arm64', AARCH64],
    ] as const) {
      const top = byArch.get(arch)!.layers.at(-1)!;
      const files = await readLayerFiles(await registry.getBlob(repo, top.digest, top.size), BINARIES);
      for (const path of BINARIES) {
        const file = files.get(path);
        assert.ok(file, `${arch}: ${path} is in the last layer (found ${[...files.keys()].join(', ') || 'nothing'})`);
        assert.equal(elfMachine(file.head), machine, `${arch}: ${path} has e_machine ${elfMachine(file.head)}, want ${machine}`);
      }
    }
    const arm64 = byArch.get('arm64')!;
    const arm64Top = tempDir('stv-arm64-top-');
    await extractLayer(repo, arm64.layers.at(-1)!, arm64Top);
    return { arm64Top, arm64Base: arm64.layers[0]! };
  }

  function assertPlatformCheckPassed(job: any): void {
    const check = job.result.build.platform_check;
    assert.ok(check?.ok, JSON.stringify(job.result.build));
    assert.deepEqual(check.platforms.map((p: any) => p.platform).sort(), HELLO_PLATFORMS);
    assert.ok(
      check.platforms.every((p: any) => p.ok && p.files_checked > 0),
      JSON.stringify(check.platforms),
    );
  }

  it('compiles under QEMU for arm64: each variant has its own ELF machine, and the arm64 binary runs under qemu-aarch64', async () => {
    const job = await buildHello(EMULATED_DOCKERFILE, 'team/hello-emulated');
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assertPlatformCheckPassed(job);
    const { arm64Top, arm64Base } = await checkBinaries('team/hello-emulated');
    const qemu = qemuAarch64();

    const alone = await runProcess(qemu, [join(arm64Top, 'usr/local/bin/hello-static')]);
    assert.equal(alone.stdout, 'hello from aarch64 (built for aarch64)\n');

    // The dynamically linked one needs the arm64 loader and libc: the arm64 base layer is its sysroot.
    const sysroot = tempDir('stv-arm64-root-');
    await extractLayer('team/hello-emulated', arm64Base, sysroot);
    assert.ok(existsSync(join(sysroot, 'lib/ld-linux-aarch64.so.1')), 'the arm64 base layer has the AArch64 loader');
    const dynamic = await runProcess(qemu, ['-L', sysroot, join(arm64Top, 'usr/local/bin/hello')]);
    assert.equal(dynamic.stdout, 'hello from aarch64 (built for aarch64)\n');
  });

  it('rebuilds the same image from the cache, still checked per platform', async () => {
    const job = await buildHello(EMULATED_DOCKERFILE, 'team/hello-emulated');
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const runs = job.result.build.steps.filter((s: any) => /\bRUN\b/.test(s.name));
    assert.ok(runs.length >= 4, JSON.stringify(job.result.build.steps));
    assert.ok(
      runs.every((s: any) => s.cached),
      `every RUN of both platforms cached: ${JSON.stringify(runs)}`,
    );
    // BuildKit names each platform's steps; the cross-compiling case below relies on it.
    assert.ok(
      runs.some((s: any) => ARM64_STEP.test(s.name)),
      JSON.stringify(runs.map((s: any) => s.name)),
    );
    assertPlatformCheckPassed(job);
  });

  it('cross-compiles on the build platform instead: the arm64 variant still holds an AArch64 binary that runs', async () => {
    const job = await buildHello(CROSS_DOCKERFILE, 'team/hello-cross');
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assertPlatformCheckPassed(job);
    // The build stage runs once per target on the build platform; no RUN step is an arm64 one.
    const runs = job.result.build.steps.filter((s: any) => /\bRUN\b/.test(s.name));
    assert.ok(runs.length >= 2, JSON.stringify(job.result.build.steps));
    assert.ok(!runs.some((s: any) => ARM64_STEP.test(s.name)), JSON.stringify(runs.map((s: any) => s.name)));
    const { arm64Top } = await checkBinaries('team/hello-cross');
    const out = await runProcess(qemuAarch64(), [join(arm64Top, 'usr/local/bin/hello-static')]);
    assert.equal(out.stdout, 'hello from aarch64 (built for aarch64)\n');
  });
});
