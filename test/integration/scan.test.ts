import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { renameSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

// An AWS-style key pair Trivy's secret rules recognise, random (its rules skip AWS's
// documented EXAMPLE keys).
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const AWS_KEY_ID = `AKIA${Array.from(randomBytes(16), (b) => ALNUM[b % 32]).join('')}`;
const AWS_SECRET = randomBytes(30).toString('base64');

describe('scan jobs with the real Trivy and a real vulnerability DB', () => {
  let stack: Stack;
  let server: any;
  let appImage: string;
  let cacheDir: string;
  const scan = (body: object) =>
    request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'scan', ...body })
      .expect(202);

  before(async () => {
    cacheDir = await makeTrivyCache();
    stack = await startStack({ buildkit: true, overrides: { trivy: { cacheDir, dbUpdate: false } } });
    server = stack.app.getHttpServer();
    // An image with an old lodash under node_modules and a planted AWS credential file.
    const context = await tarGz({
      'node_modules/lodash/package.json': JSON.stringify({ name: 'lodash', version: '4.17.20', license: 'MIT' }),
      'aws-credentials': `[default]\naws_access_key_id = ${AWS_KEY_ID}\naws_secret_access_key = ${AWS_SECRET}\n`,
    });
    const upload = await uploadContext(server, context);
    appImage = `${stack.registry.address}/team/scanme:1`;
    const dockerfile = 'FROM debian:bookworm-slim\nCOPY node_modules /app/node_modules\nCOPY aws-credentials /root/.aws/credentials\n';
    const built = await waitForJob(
      server,
      (
        await request(server)
          .post('/v1/jobs')
          .set(AUTH)
          .send({ action: 'build', context: { upload: upload.body.digest }, dockerfile_inline: dockerfile, tags: [appImage] })
          .expect(202)
      ).body.id,
    );
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
  });
  after(async () => stack?.stop());

  it('reports the expected CVEs with every field, a summary that adds up, and SARIF + CycloneDX artifacts', async () => {
    const job = await waitForJob(server, (await scan({ image: appImage })).body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const r = job.result;
    const apt = r.vulnerabilities.find((v: any) => v.id === 'CVE-2011-3374');
    assert.ok(apt, JSON.stringify(r.vulnerabilities.map((v: any) => v.id)));
    assert.equal(apt.package, 'apt');
    assert.equal(apt.fixed_version, null);
    assert.match(apt.layer_digest, /^sha256:/);
    const lodash = r.vulnerabilities.find((v: any) => v.id === 'CVE-2021-23337');
    assert.ok(lodash);
    assert.deepEqual(
      [lodash.package, lodash.installed_version, lodash.fixed_version, lodash.severity],
      ['lodash', '4.17.20', '4.17.21', 'HIGH'],
    );
    for (const v of r.vulnerabilities) {
      for (const field of ['id', 'package', 'installed_version', 'severity', 'status', 'title', 'url', 'target', 'class', 'layer_digest'])
        assert.ok(v[field], `${v.id}.${field}`);
      assert.equal(typeof v.cvss_score, 'number', `${v.id}.cvss_score`);
    }
    const s = r.summary;
    assert.equal(s.critical + s.high + s.medium + s.low + s.unknown, r.vulnerabilities.length);
    assert.equal(s.fixable, r.vulnerabilities.filter((v: any) => v.fixed_version).length);
    assert.equal(r.image_info.reference, appImage.replace(/^/, ''));
    assert.equal(r.cached, false);

    const list = (await request(server).get(`/v1/jobs/${job.id}/artifacts`).set(AUTH).expect(200)).body.items.map((a: any) => a.name);
    assert.deepEqual(list, ['report.sarif.json', 'sbom.cdx.json', 'trivy-report.json']);
    const sarif = (await request(server).get(`/v1/jobs/${job.id}/artifacts/report.sarif.json`).set(AUTH).expect(200)).body;
    assert.equal(JSON.parse(Buffer.isBuffer(sarif) ? sarif.toString() : JSON.stringify(sarif)).version, '2.1.0');
    const cdx = await request(server)
      .get(`/v1/jobs/${job.id}/artifacts/sbom.cdx.json`)
      .set(AUTH)
      .buffer(true)
      .parse((res, cb) => {
        let d = '';
        res.on('data', (c: Buffer) => (d += c.toString()));
        res.on('end', () => cb(null, d));
      });
    assert.equal(JSON.parse(cdx.body).bomFormat, 'CycloneDX');
    await request(server).get(`/v1/jobs/${job.id}/artifacts/../../etc/passwd`).set(AUTH).expect(404);
  });

  it('reports the planted secret without its value', async () => {
    const job = await waitForJob(server, (await scan({ image: appImage, scanners: ['secret'] })).body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.ok(
      job.result.secrets.some((s: any) => /aws/i.test(s.rule) && s.target.includes('.aws/credentials')),
      JSON.stringify(job.result.secrets),
    );
    const everything =
      JSON.stringify(job) + JSON.stringify((await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(AUTH)).body);
    assert.ok(!everything.includes(AWS_SECRET) && !everything.includes(AWS_KEY_ID), 'the value appears nowhere');
  });

  it('gates: a strict policy names its violations, an allow-list with reasons passes, an expired entry does not', async () => {
    const strict = await waitForJob(
      server,
      (await scan({ image: appImage, scanners: ['vuln'], policy: { max_high: 0, max_low: 0 } })).body.id,
    );
    assert.equal(strict.state, 'succeeded', 'the scan answered; the verdict is data');
    assert.equal(strict.result.policy.passed, false);
    assert.ok(strict.result.policy.violations.some((v: any) => v.id === 'CVE-2021-23337' && v.rule === 'max_high=0'));
    assert.ok(strict.result.policy.violations.some((v: any) => v.id === 'CVE-2011-3374' && v.rule === 'max_low=0'));

    const ids = strict.result.vulnerabilities.map((v: any) => v.id);
    const allowAll = ids.map((id: string) => ({ id, reason: 'accepted by the platform team', expires: '2099-01-01' }));
    const allowed = await waitForJob(
      server,
      (await scan({ image: appImage, scanners: ['vuln'], policy: { max_critical: 0, max_high: 0, max_low: 0, allow: allowAll } })).body.id,
    );
    assert.equal(allowed.result.policy.passed, true, JSON.stringify(allowed.result.policy.violations));
    assert.equal(allowed.result.policy.allowed.length, new Set(ids).size);

    const expired = await waitForJob(
      server,
      (
        await scan({
          image: appImage,
          scanners: ['vuln'],
          policy: { max_critical: 0, max_high: 0, max_low: 0, allow: allowAll.map((a: any) => ({ ...a, expires: '2020-01-01' })) },
        })
      ).body.id,
    );
    assert.equal(expired.result.policy.passed, false);
    assert.equal(expired.result.policy.expired.length, allowAll.length);
  });

  it('answers a repeat scan of the same digest from the cache, with the same findings', async () => {
    const first = await waitForJob(server, (await scan({ image: `${stack.registry.address}/library/debian:bookworm-slim` })).body.id);
    const second = await waitForJob(server, (await scan({ image: `${stack.registry.address}/library/debian:bookworm-slim` })).body.id);
    assert.equal(second.result.cached, true);
    assert.deepEqual(second.result.vulnerabilities, first.result.vulnerabilities);
    assert.deepEqual(second.result.artifacts, first.result.artifacts);
  });

  it('fails clearly for a missing image, and for Trivy without a DB', async () => {
    const missing = await waitForJob(server, (await scan({ image: `${stack.registry.address}/team/nothing:1` })).body.id);
    assert.equal(missing.error.code, 'IMAGE_NOT_FOUND');
    // The same worker with its DB taken away: a clear code, not a crash.
    renameSync(join(cacheDir, 'db'), join(cacheDir, 'db.away'));
    try {
      const noDb = await waitForJob(server, (await scan({ image: `${stack.registry.address}/library/debian:bookworm-slim` })).body.id);
      assert.equal(noDb.state, 'failed');
      assert.equal(noDb.error.code, 'SCANNER_UNAVAILABLE');
      assert.match(noDb.error.message, /no Trivy vulnerability DB/);
    } finally {
      renameSync(join(cacheDir, 'db.away'), join(cacheDir, 'db'));
    }
  });
});
