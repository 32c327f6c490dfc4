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
  let multiImage: string;
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

    // A two-platform index whose arm64 image alone carries the old lodash (COPY only:
    // nothing runs under QEMU).
    const multiContext = await tarGz({
      'arm64/app/node_modules/lodash/package.json': JSON.stringify({ name: 'lodash', version: '4.17.20', license: 'MIT' }),
      'amd64/app/README': 'no lodash on amd64\n',
    });
    const multiUpload = await uploadContext(server, multiContext);
    multiImage = `${stack.registry.address}/team/scanme-multi:1`;
    const multi = await waitForJob(
      server,
      (
        await request(server)
          .post('/v1/jobs')
          .set(AUTH)
          .send({
            action: 'build',
            context: { upload: multiUpload.body.digest },
            dockerfile_inline: 'FROM debian:bookworm-slim\nARG TARGETARCH\nCOPY ${TARGETARCH}/app /app\n',
            platforms: ['linux/amd64', 'linux/arm64'],
            tags: [multiImage],
          })
          .expect(202)
      ).body.id,
    );
    assert.equal(multi.state, 'succeeded', JSON.stringify(multi.error));
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
    assert.equal(first.result.platforms.length, 2, 'the seeded base is an index of two platforms');
    assert.deepEqual(
      second.result.platforms.map((p: any) => p.cached),
      [true, true],
    );
    assert.equal(second.result.cached, true);
    assert.deepEqual(second.result.vulnerabilities, first.result.vulnerabilities);
    assert.deepEqual(second.result.artifacts, first.result.artifacts);
  });

  it('scans every platform of an index: an entry, a manifest and reports each, findings combined', async () => {
    const job = await waitForJob(server, (await scan({ image: multiImage })).body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const r = job.result;
    assert.deepEqual(
      r.platforms.map((p: any) => p.platform),
      ['linux/amd64', 'linux/arm64'],
    );
    const [amd, arm] = r.platforms;
    assert.match(amd.manifest_digest, /^sha256:[a-f0-9]{64}$/);
    assert.notEqual(amd.manifest_digest, arm.manifest_digest);
    assert.ok(![amd.manifest_digest, arm.manifest_digest].includes(r.image_info.digest), 'platform manifests, not the index');
    assert.deepEqual(r.image_info.platforms, ['linux/amd64', 'linux/arm64']);

    // Found on arm64 only; the base's findings once, on both.
    const lodash = r.vulnerabilities.filter((v: any) => v.id === 'CVE-2021-23337');
    assert.deepEqual(
      lodash.map((v: any) => v.platforms),
      [['linux/arm64']],
    );
    const apt = r.vulnerabilities.filter((v: any) => v.id === 'CVE-2011-3374' && v.package === 'apt');
    assert.deepEqual(
      apt.map((v: any) => v.platforms),
      [['linux/amd64', 'linux/arm64']],
    );
    const total = (s: any) => s.critical + s.high + s.medium + s.low + s.unknown;
    assert.equal(total(r.summary), r.vulnerabilities.length);
    assert.equal(total(arm.summary), total(amd.summary) + 1, 'arm64: the base findings plus lodash');
    assert.equal(total(r.summary), total(arm.summary), 'combined: each finding once');
    assert.equal(r.summary.high, arm.summary.high);

    // Each platform's reports, downloadable, of its own image.
    assert.deepEqual(arm.artifacts, {
      report: 'trivy-report.linux-arm64.json',
      sbom: 'sbom.cdx.linux-arm64.json',
      sarif: 'report.sarif.linux-arm64.json',
    });
    const items = (await request(server).get(`/v1/jobs/${job.id}/artifacts`).set(AUTH).expect(200)).body.items;
    assert.deepEqual(
      items.map((a: any) => a.name),
      [
        'report.sarif.linux-amd64.json',
        'report.sarif.linux-arm64.json',
        'sbom.cdx.linux-amd64.json',
        'sbom.cdx.linux-arm64.json',
        'trivy-report.linux-amd64.json',
        'trivy-report.linux-arm64.json',
      ],
    );
    assert.equal(items.find((a: any) => a.name === 'sbom.cdx.linux-arm64.json').media_type, 'application/vnd.cyclonedx+json');
    const text = async (name: string) => {
      const res = await request(server)
        .get(`/v1/jobs/${job.id}/artifacts/${name}`)
        .set(AUTH)
        .buffer(true)
        .parse((res, cb) => {
          let d = '';
          res.on('data', (c: Buffer) => (d += c.toString()));
          res.on('end', () => cb(null, d));
        })
        .expect(200);
      return { type: res.headers['content-type'], body: JSON.parse(res.body) };
    };
    for (const p of r.platforms) {
      const report = await text(p.artifacts.report);
      assert.equal(report.body.Metadata.ImageConfig.architecture, p.platform.split('/')[1]);
      assert.ok(JSON.stringify(report.body.Metadata.RepoDigests ?? report.body.ArtifactName).includes(p.manifest_digest));
      const sbom = await text(p.artifacts.sbom);
      assert.match(String(sbom.type), /cyclonedx/);
      assert.equal(sbom.body.bomFormat, 'CycloneDX');
      assert.equal((await text(p.artifacts.sarif)).body.version, '2.1.0');
    }
    assert.ok(JSON.stringify((await text('sbom.cdx.linux-arm64.json')).body).includes('lodash'));
    assert.ok(!JSON.stringify((await text('sbom.cdx.linux-amd64.json')).body).includes('lodash'));
  });

  it('scans one platform when named, and a single-platform image with all', async () => {
    const job = await waitForJob(server, (await scan({ image: multiImage, platform: 'linux/arm64' })).body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual(
      job.result.platforms.map((p: any) => [p.platform, p.artifacts.report]),
      [['linux/arm64', 'trivy-report.json']],
    );
    assert.equal(job.result.cached, true, "the index scan's arm64 entry, its reports under the plain names");
    assert.ok(job.result.vulnerabilities.some((v: any) => v.id === 'CVE-2021-23337'));
    const names = (await request(server).get(`/v1/jobs/${job.id}/artifacts`).set(AUTH).expect(200)).body.items.map((a: any) => a.name);
    assert.deepEqual(names, ['report.sarif.json', 'sbom.cdx.json', 'trivy-report.json']);

    const single = await waitForJob(server, (await scan({ image: appImage, platform: 'all' })).body.id);
    assert.deepEqual(
      single.result.platforms.map((p: any) => p.platform),
      ['linux/amd64'],
    );
  });

  it('gates each platform: one failing fails the scan, its violations naming it', async () => {
    // Allowed: what the base has on both platforms; limited: HIGH, which lodash adds on arm64.
    const base = await waitForJob(server, (await scan({ image: multiImage, platform: 'linux/amd64', scanners: ['vuln'] })).body.id);
    const allow = base.result.vulnerabilities.map((v: any) => ({ id: v.id, reason: 'in the base image' }));
    const job = await waitForJob(
      server,
      (await scan({ image: multiImage, scanners: ['vuln'], policy: { max_critical: 0, max_high: 0, allow } })).body.id,
    );
    assert.equal(job.state, 'succeeded', 'the verdict is data');
    const policy = job.result.policy;
    assert.equal(policy.passed, false);
    assert.deepEqual(
      job.result.platforms.map((p: any) => [p.platform, p.policy.passed]),
      [
        ['linux/amd64', true],
        ['linux/arm64', false],
      ],
    );
    assert.deepEqual(
      policy.violations.map((v: any) => [v.id, v.platform, v.rule]),
      [['CVE-2021-23337', 'linux/arm64', 'max_high=0']],
    );
  });

  it('refuses a platform that is neither all nor os/arch[/variant]', async () => {
    for (const platform of ['-x', 'all/extra']) {
      const res = await request(server).post('/v1/jobs').set(AUTH).send({ action: 'scan', image: multiImage, platform }).expect(400);
      assert.deepEqual(
        res.body.error.details.fields.map((f: any) => f.path),
        ['platform'],
        JSON.stringify(res.body),
      );
    }
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
