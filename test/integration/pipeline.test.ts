import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { waitForJob } from '../support/build-helpers.js';
import { TOOLS } from '../support/env.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

process.env.STV_PIPELINE_KEY_PASSWORD = `pipeline-${Date.now()}`;

describe('the build pipeline: build → scan → gate → sign → attest → copy', () => {
  let stack: Stack;
  let server: any;
  const dockerfile = 'FROM debian:bookworm-slim\nRUN echo pipeline > /built-by\n';
  const run = async (body: object) =>
    waitForJob(
      server,
      (
        await request(server)
          .post('/v1/jobs')
          .set(AUTH)
          .send({ action: 'build', dockerfile_inline: dockerfile, ...body })
          .expect(202)
      ).body.id,
    );

  before(async () => {
    const keysDir = tempDir('stv-pipeline-keys-');
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: process.env.STV_PIPELINE_KEY_PASSWORD },
    });
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({ keys: [{ name: 'release', key: join(keysDir, 'release.key'), password_env: 'STV_PIPELINE_KEY_PASSWORD' }] }),
    );
    stack = await startStack({
      buildkit: true,
      overrides: { signing: { offline: true, keysFile }, trivy: { cacheDir: await makeTrivyCache(), dbUpdate: false } },
    });
    server = stack.app.getHttpServer();
  });
  after(async () => stack?.stop());

  it('runs every stage, signs and attests the image, and copies it with its signature', async () => {
    const tag = `${stack.registry.address}/team/piped:1`;
    const dest = `${stack.registry.address}/release/piped:1`;
    const job = await run({ tags: [tag], scan: { policy: { ignore_unfixed: true } }, sign: true, push_to: [dest] });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual(
      job.result.stages.map((s: any) => [s.name, s.state]),
      [
        ['build', 'succeeded'],
        ['scan', 'succeeded'],
        ['gate', 'succeeded'],
        ['sign', 'succeeded'],
        ['attest', 'succeeded'],
        ['push', 'succeeded'],
      ],
    );
    assert.ok(job.result.vulnerabilities.some((v: any) => v.id === 'CVE-2011-3374'));
    assert.equal(job.result.policy.passed, true);
    // The default pipeline's SBOM is the scan's (no sbom stage: Trivy ran once), attached.
    assert.deepEqual(job.result.pipeline, { sbom: 'attached', sign: 'signed with key release' });
    assert.deepEqual(
      job.result.sbom.map((s: any) => s.artifact),
      ['sbom.cdx.json'],
    );
    assert.equal(job.result.signed.digest, job.result.build.digest);
    // One platform, but with its provenance an index: the platform manifest is signed and attested.
    const client = new RegistryClient(stack.registry.address);
    const amd64 = (await client.getManifest('team/piped', job.result.build.digest)).json.manifests!.find(
      (d) => d.platform?.architecture === 'amd64',
    )!.digest;
    assert.deepEqual(job.result.signed.platforms, [{ platform: 'linux/amd64', digest: amd64 }]);
    assert.deepEqual(job.result.attested, [{ platform: 'linux/amd64', digest: amd64, types: ['cyclonedx', 'vuln'] }]);
    assert.deepEqual(job.result.pushed, [{ reference: dest, digest: job.result.build.digest }]);

    const verify = await waitForJob(
      server,
      (await request(server).post('/v1/jobs').set(AUTH).send({ action: 'verify', image: dest }).expect(202)).body.id,
    );
    assert.equal(verify.result.verification.verified, true, JSON.stringify(verify.result.verification));
    assert.deepEqual(
      verify.result.verification.attestations.map((a: any) => [a.type, a.verified]),
      [
        ['cyclonedx', true],
        ['vuln', true],
      ],
    );
    assert.deepEqual(
      verify.result.verification.platforms.map((p: any) => [
        p.platform,
        p.digest,
        p.verified,
        p.attestations.every((a: any) => a.verified),
      ]),
      [['linux/amd64', amd64, true, true]],
    );
  });

  it('stops at a failing gate: POLICY_FAILED naming the violations, nothing signed or copied', async () => {
    const tag = `${stack.registry.address}/team/blocked:1`;
    const dest = `${stack.registry.address}/release/blocked:1`;
    const job = await run({ tags: [tag], scan: { policy: { max_critical: 0 } }, sign: true, push_to: [dest] });
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'POLICY_FAILED');
    assert.ok(
      job.error.details.violations.some((v: any) => v.id === 'CVE-2023-45853' && v.rule === 'max_critical=0'),
      JSON.stringify(job.error.details.violations),
    );
    assert.match(job.error.message, /CVE-2023-45853/);
    assert.deepEqual(
      job.error.details.stages.map((s: any) => [s.name, s.state]),
      [
        ['build', 'succeeded'],
        ['scan', 'succeeded'],
        ['gate', 'failed'],
      ],
    );
    assert.equal(await new RegistryClient(stack.registry.address).manifestDigest('release/blocked', '1'), undefined, 'nothing copied');
    const verify = await waitForJob(
      server,
      (await request(server).post('/v1/jobs').set(AUTH).send({ action: 'verify', image: tag }).expect(202)).body.id,
    );
    assert.equal(verify.result.verification.verified, false, 'nothing signed');
  });

  it('refuses pipeline stages without a pushed image, and an unknown signing key', async () => {
    const noTags = await request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'build', dockerfile_inline: dockerfile, sign: true })
      .expect(400);
    assert.ok(noTags.body.error.details.fields.some((f: any) => f.path === 'sign'));
    const badKey = await request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'build', dockerfile_inline: dockerfile, tags: [`${stack.registry.address}/team/x:1`], sign: { key: 'nope' } })
      .expect(400);
    assert.equal(badKey.body.error.details.fields[0].path, 'sign.key');
  });
});
