import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { copyImage } from '../../src/engines/registry/image-copy.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { BASE_PLATFORMS } from '../support/env.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

/**
 * The platform honesty check (issue 16) on a real buildkitd and registry: an image whose
 * only manifest is linux/amd64, built "for linux/arm64", holds x86-64 binaries.
 */
describe('platform check: binaries must match the platform they are labelled with', () => {
  let stack: Stack;
  let server: any;
  let context: string;
  let amd64Only: string;
  const submit = (body: object) => request(server).post('/v1/jobs').set(AUTH).send(body).expect(202);

  before(async () => {
    stack = await startStack({ buildkit: true });
    server = stack.app.getHttpServer();
    // The seeded base may be one amd64 manifest or an index: copy its amd64 manifest alone,
    // by digest, so this repository is amd64-only whatever the seed is.
    const client = new RegistryClient(stack.registry.address);
    const base = await client.getManifest('library/debian', 'bookworm-slim');
    const amd64 = base.json.manifests
      ? base.json.manifests.find((d) => d.platform?.os === 'linux' && d.platform.architecture === 'amd64')!.digest
      : base.digest;
    const from = { client, repository: 'library/debian' };
    await copyImage(from, { client, repository: 'test/amd64-only' }, amd64, '1');
    amd64Only = `${stack.registry.address}/test/amd64-only:1`;
    const upload = await uploadContext(server, await tarGz({ 'app.txt': 'app\n' }));
    assert.ok([200, 201].includes(upload.status), JSON.stringify(upload.body));
    context = upload.body.digest;
  });
  after(async () => stack?.stop());

  const dockerfile = () => `FROM ${amd64Only}\nRUN echo hi > /hi\nCOPY app.txt /app.txt\n`;

  it('fails a linux/arm64 build on an amd64-only base with PLATFORM_MISMATCH, naming a file, its machine and its layer', async (t) => {
    const { body } = await submit({
      action: 'build',
      dockerfile_inline: dockerfile(),
      context: { upload: context },
      platforms: ['linux/arm64'],
      tags: [`${stack.registry.address}/team/liar:1`],
    });
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'failed', JSON.stringify(job.result?.build));
    assert.equal(job.error.code, 'PLATFORM_MISMATCH', JSON.stringify(job.error));
    t.diagnostic(job.error.message);
    const first = job.error.details.mismatches[0];
    assert.match(first.path, /^\/(usr\/)?(s?bin|lib)/);
    assert.equal(first.machine, 'x86-64');
    assert.equal(first.platform, 'linux/arm64');
    assert.match(first.layer_digest, /^sha256:[0-9a-f]{64}$/);
    assert.ok(job.error.message.includes(first.path) && job.error.message.includes(first.layer_digest), job.error.message);
    assert.ok(job.error.details.mismatches_total >= job.error.details.mismatches.length);
    assert.ok(job.error.details.mismatches.length <= 50);
    assert.ok(
      job.error.details.mismatches.some((m: any) => m.path === '/usr/bin/dash'),
      JSON.stringify(job.error.details.mismatches.map((m: any) => m.path)),
    );
    // BuildKit said so too: its InvalidBaseImagePlatform warning goes with the failure.
    assert.ok(
      job.error.details.warnings?.some((w: any) => w.rule === 'InvalidBaseImagePlatform' && /linux\/arm64/.test(w.message)),
      JSON.stringify(job.error.details.warnings),
    );
  });

  it('passes the same Dockerfile built for linux/amd64, with files checked', async (t) => {
    const { body } = await submit({
      action: 'build',
      dockerfile_inline: dockerfile(),
      context: { upload: context },
      platforms: ['linux/amd64'],
      tags: [`${stack.registry.address}/team/honest:1`],
    });
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const check = job.result.build.platform_check;
    t.diagnostic(`files_checked ${check.files_checked}, exempt ${check.platforms[0].files_exempt}`);
    assert.equal(check.ok, true);
    assert.ok(check.files_checked > 0, JSON.stringify(check));
    assert.deepEqual(
      check.platforms.map((p: any) => [p.platform, p.ok, p.mismatches.length]),
      [['linux/amd64', true, 0]],
    );
  });

  it('inspect reports platform_check ok for the amd64-only image as linux/amd64', async () => {
    const { body } = await submit({ action: 'inspect', image: amd64Only, platform: 'linux/amd64' });
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const check = job.result.platform_check;
    assert.equal(check.ok, true, JSON.stringify(check));
    assert.equal(check.platform, 'linux/amd64');
    assert.ok(check.files_checked > 0);
    assert.deepEqual(check.mismatches, []);
  });

  it('inspect of an index without a platform checks every platform of it', async () => {
    // team/honest:1 (the amd64 build above) is an index: the image and its provenance attestation.
    const { body } = await submit({ action: 'inspect', image: `${stack.registry.address}/team/honest:1` });
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.notEqual(job.result.image_info.digest, job.result.image_info.manifest_digest, 'an index');
    assert.deepEqual(
      job.result.platform_checks.map((c: any) => [c.platform, c.ok]),
      [['linux/amd64', true]],
      'the attestation manifest is not a platform',
    );
    assert.equal(job.result.platform_check.manifest_digest, job.result.image_info.manifest_digest);
  });

  it('inspect with platform_check: false streams no layer and reports no check', async () => {
    const { body } = await submit({ action: 'inspect', image: amd64Only, platform_check: false });
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.result.image_info.architecture, 'amd64');
    assert.equal(job.result.platform_check, undefined);
    assert.equal(job.result.platform_checks, undefined);
    const bad = await request(server).post('/v1/jobs').set(AUTH).send({ action: 'inspect', image: amd64Only, platform_check: 'no' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'VALIDATION_FAILED');
  });

  it('inspect of the seeded base finds every platform honest (its binaries are for that machine)', async () => {
    const { body } = await submit({ action: 'inspect', image: `${stack.registry.address}/library/debian:bookworm-slim` });
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const checks = job.result.platform_checks.map((c: any) => [c.platform.split('/').slice(0, 2).join('/'), c.ok, c.files_checked > 100]);
    const wanted = BASE_PLATFORMS.map((p) => [p.split('/').slice(0, 2).join('/'), true, true]);
    assert.deepEqual(checks.sort(), wanted.sort(), JSON.stringify(job.result.platform_checks.map((c: any) => c.mismatches.slice(0, 3))));
  });
});
