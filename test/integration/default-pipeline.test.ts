import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { parseDefaultPipeline } from '../../src/config/config.js';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { waitForJob } from '../support/build-helpers.js';
import { TOOLS } from '../support/env.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

process.env.STV_DEFPIPE_KEY_PASSWORD = `defpipe-${Date.now()}`;
const BOTH = ['linux/amd64', 'linux/arm64'];

/**
 * Issue 17: with the default policy (STEVEDORE_DEFAULT_PIPELINE unset = `sbom,sign`) a plain
 * tagged build that pushes comes out signed, with a CycloneDX attestation per platform
 * manifest, the SBOM downloadable. Trivy gets an empty cache dir: no vulnerability DB,
 * which the SBOM must not need. Real buildkitd, registry, Trivy and cosign.
 */
function suite(name: string, withKey: boolean, body: (ctx: { stack: () => Stack; run: (b: object) => Promise<any> }) => void) {
  describe(name, () => {
    let stack: Stack;
    let server: any;
    before(async () => {
      const keysDir = tempDir('stv-defpipe-keys-');
      let keysFile: string | undefined;
      if (withKey) {
        await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], {
          env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: process.env.STV_DEFPIPE_KEY_PASSWORD },
        });
        keysFile = join(keysDir, 'keys.json');
        writeFileSync(
          keysFile,
          JSON.stringify({ keys: [{ name: 'release', key: join(keysDir, 'release.key'), password_env: 'STV_DEFPIPE_KEY_PASSWORD' }] }),
        );
      }
      const trivyCache = tempDir('stv-defpipe-trivy-');
      stack = await startStack({
        buildkit: true,
        overrides: { signing: { offline: true, keysFile }, trivy: { cacheDir: trivyCache, dbUpdate: false } },
      });
      assert.deepEqual(stack.config.defaultPipeline, { sbom: 'on', sign: 'on' }, 'the default policy');
      assert.ok(!readdirSync(trivyCache).includes('db'), 'no Trivy DB');
      server = stack.app.getHttpServer();
    });
    after(async () => stack?.stop());
    body({
      stack: () => stack,
      run: async (b: object) => waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send(b).expect(202)).body.id),
    });
  });
}

const sbomOf = async (server: any, jobId: string, artifact: string) => {
  const res = await request(server).get(`/v1/jobs/${jobId}/artifacts/${artifact}`).set(AUTH).buffer(true).expect(200);
  return JSON.parse(res.text ?? res.body.toString()) as { bomFormat: string; components?: { name: string }[] };
};

suite('the default pipeline with a signing key: every pushed image signed, with an SBOM attestation', true, ({ stack, run }) => {
  it('a plain two-platform build is signed and attested per platform; verify says so; the SBOMs are artifacts', async (t) => {
    const server = stack().app.getHttpServer();
    const tag = `${stack().registry.address}/team/defaulted:1`;
    const built = await run({
      action: 'build',
      dockerfile_inline: 'FROM debian:bookworm-slim\nENV BUILT_BY=default-pipeline\n',
      platforms: BOTH,
      tags: [tag],
    });
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
    t.diagnostic(`stages ${built.result.stages.map((s: any) => `${s.name} ${(s.duration_ms / 1000).toFixed(1)} s`).join(', ')}`);
    assert.deepEqual(
      built.result.stages.map((s: any) => [s.name, s.state]),
      [
        ['build', 'succeeded'],
        ['sbom', 'succeeded'],
        ['sign', 'succeeded'],
        ['attest', 'succeeded'],
      ],
    );
    assert.deepEqual(built.result.pipeline, { sbom: 'attached', sign: 'signed with key release' });
    const index = await new RegistryClient(stack().registry.address).getManifest('team/defaulted', built.result.build.digest);
    const platforms = index.json
      .manifests!.filter((d) => d.platform && d.platform.os !== 'unknown')
      .map((d) => ({ platform: `${d.platform!.os}/${d.platform!.architecture}`, digest: d.digest }))
      .sort((a, b) => a.platform.localeCompare(b.platform));
    assert.deepEqual(
      platforms.map((p) => p.platform),
      BOTH,
    );
    assert.equal(built.result.signed.digest, built.result.build.digest);
    assert.equal(built.result.signed.key, 'release');
    assert.deepEqual(built.result.attestations, ['cyclonedx']);
    const sorted = <T extends { platform: string }>(xs: T[]) => [...xs].sort((a, b) => a.platform.localeCompare(b.platform));
    assert.deepEqual(
      sorted(built.result.attested),
      platforms.map((p) => ({ ...p, types: ['cyclonedx'] })),
    );
    assert.deepEqual(
      sorted(built.result.sbom),
      platforms.map((p) => ({ ...p, artifact: `sbom.cdx.${p.platform.replace('/', '-')}.json` })),
    );
    // Each platform's SBOM lists the Debian packages of its base (no DB needed for that).
    for (const s of built.result.sbom) {
      assert.ok(built.result.artifacts.includes(s.artifact), JSON.stringify(built.result.artifacts));
      const bom = await sbomOf(server, built.id, s.artifact);
      assert.equal(bom.bomFormat, 'CycloneDX');
      assert.ok(
        bom.components?.some((c) => c.name === 'dpkg'),
        `${s.platform}: ${bom.components?.length} components`,
      );
    }

    const verify = await run({ action: 'verify', image: tag });
    const v = verify.result.verification;
    assert.equal(v.verified, true, JSON.stringify(v));
    assert.deepEqual(
      sorted(v.platforms).map((p: any) => [
        p.platform,
        p.digest,
        p.verified,
        p.attestations.find((a: any) => a.type === 'cyclonedx')?.verified,
      ]),
      platforms.map((p) => [p.platform, p.digest, true, true]),
    );
    assert.equal(v.attestations.find((a: any) => a.type === 'cyclonedx').verified, true);
  });

  it('sbom: false and sign: false where the policy allows: nothing attached, and the result says why', async () => {
    const tag = `${stack().registry.address}/team/optout:1`;
    const built = await run({
      action: 'build',
      dockerfile_inline: 'FROM debian:bookworm-slim\nENV BUILT_BY=opted-out\n',
      tags: [tag],
      sbom: false,
      sign: false,
    });
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
    assert.deepEqual(
      built.result.stages.map((s: any) => s.name),
      ['build'],
    );
    assert.deepEqual(built.result.pipeline, { sbom: 'skipped: sbom: false', sign: 'skipped: sign: false' });
    assert.equal(built.result.signed, undefined);
    assert.equal(built.result.attestations, undefined);
    const listed = await request(stack().app.getHttpServer()).get(`/v1/jobs/${built.id}/artifacts`).set(AUTH).expect(200);
    assert.deepEqual(listed.body.items, [], 'no SBOM stored');
    const verify = await run({ action: 'verify', image: tag });
    assert.equal(verify.result.verification.verified, false, 'not signed');
    assert.ok(verify.result.verification.attestations.every((a: any) => !a.verified));
  });

  it('where the policy makes them mandatory (sbom!,sign!), opting out is a 400 naming the policy', async () => {
    const api = await stack().startApp({ api: true, worker: false }, { defaultPipeline: parseDefaultPipeline('sbom!,sign!') });
    const refused = await request(api.app.getHttpServer())
      .post('/v1/jobs')
      .set(AUTH)
      .send({
        action: 'build',
        dockerfile_inline: 'FROM debian:bookworm-slim\n',
        tags: [`${stack().registry.address}/team/refused:1`],
        sbom: false,
        sign: false,
      })
      .expect(400);
    assert.deepEqual(
      refused.body.error.details.fields.map((f: any) => f.path),
      ['sbom', 'sign'],
    );
    assert.match(refused.body.error.details.fields[0].message, /STEVEDORE_DEFAULT_PIPELINE includes sbom!/);
    // Without opting out, the same api accepts it.
    await request(api.app.getHttpServer())
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'build', dockerfile_inline: 'FROM debian:bookworm-slim\n', tags: [`${stack().registry.address}/team/kept:1`] })
      .expect(202);
  });
});

suite('the default pipeline without a signing key: the SBOM is stored, nothing is signed or attached', false, ({ stack, run }) => {
  it('a plain build succeeds with its SBOM as an artifact, the result saying why nothing was signed or attested', async () => {
    const tag = `${stack().registry.address}/team/keyless:1`;
    const built = await run({ action: 'build', dockerfile_inline: 'FROM debian:bookworm-slim\nENV BUILT_BY=keyless\n', tags: [tag] });
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
    assert.deepEqual(
      built.result.stages.map((s: any) => [s.name, s.state]),
      [
        ['build', 'succeeded'],
        ['sbom', 'succeeded'],
      ],
    );
    assert.deepEqual(built.result.pipeline, {
      sbom: 'stored as an artifact, attestation skipped: no signing key',
      sign: 'skipped: no signing key',
    });
    assert.equal(built.result.signed, undefined);
    assert.equal(built.result.attestations, undefined);
    assert.deepEqual(
      built.result.sbom.map((s: any) => [s.platform, s.artifact]),
      [['linux/amd64', 'sbom.cdx.json']],
    );
    const bom = await sbomOf(stack().app.getHttpServer(), built.id, 'sbom.cdx.json');
    assert.equal(bom.bomFormat, 'CycloneDX');
    assert.ok(bom.components?.some((c) => c.name === 'dpkg'));
  });
});
