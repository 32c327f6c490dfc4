import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { CatalogueStore } from '../../src/catalogue/catalogue-store.js';
import { tarGz } from '../support/build-helpers.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { makeTrivyCache } from '../support/trivy-db.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const npm = (name: string, version: string) => ({
  [`node_modules/${name}/package.json`]: JSON.stringify({ name, version, license: 'MIT' }),
});
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

// A build's `diff` against the previous build of its tag, on the real stack: buildkitd,
// registry, Redis, and Trivy with the project's test DB (tar fixable, lodash < 4.17.21
// HIGH; see test/trivy-db). The default pipeline is on (SBOM per platform; no signing key,
// so no signature) and each build scans.
describe('build diff: a build of a tag built before says what changed', () => {
  let stack: Stack;
  let server: any;
  let teamA: Record<string, string>;
  let teamB: Record<string, string>;
  let tag: string;
  const first = { ...npm('lodash', '4.17.21'), ...npm('left-pad', '1.3.0') };
  const second = { ...npm('lodash', '4.17.20'), ...npm('ms', '2.1.3') };
  const finished = async (id: string, auth: Record<string, string>) => {
    const deadline = Date.now() + 300_000;
    for (;;) {
      const job = (await request(server).get(`/v1/jobs/${id}`).set(auth).expect(200)).body;
      if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const build = async (auth: Record<string, string>, files: Record<string, string>, dockerfile: string) => {
    const upload = await request(server)
      .post('/v1/contexts')
      .set(auth)
      .set('content-type', 'application/gzip')
      .send(await tarGz(files))
      .expect(201);
    const submitted = await request(server)
      .post('/v1/jobs')
      .set(auth)
      .send({
        action: 'build',
        context: { upload: upload.body.digest },
        dockerfile_inline: dockerfile,
        tags: [tag],
        // The test DB's zlib finding is CRITICAL: the gate must let every build through.
        scan: { scanners: ['vuln'], policy: { max_critical: 100, max_high: 100 } },
      })
      .expect(202);
    const job = await finished(submitted.body.id, auth);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    return job;
  };
  const plain = 'FROM debian:bookworm-slim\nCOPY node_modules /app/node_modules\n';
  // tar is Essential and dpkg depends on it: dpkg removes it only when told to ignore both.
  const withoutTar =
    'FROM debian:bookworm-slim\nRUN dpkg --purge --force-remove-essential --force-depends tar\nCOPY node_modules /app/node_modules\n';

  before(async () => {
    const cacheDir = await makeTrivyCache();
    stack = await startStack({ buildkit: true, overrides: { trivy: { cacheDir, dbUpdate: false } } });
    server = stack.app.getHttpServer();
    tag = `${stack.registry.address}/t/app:1`;
    // Both tenants may push to the same repository: what keeps their builds apart is the catalogue's tenant.
    const key = async (tenant: string) =>
      (
        await request(server)
          .post('/v1/api-keys')
          .set(AUTH)
          .send({ tenant, scopes: ['jobs:read', 'jobs:write'], repositories: [`${stack.registry.address}/t/**`] })
          .expect(201)
      ).body.key as string;
    teamA = bearer(await key('team-a'));
    teamB = bearer(await key('team-b'));
  });
  after(async () => stack?.stop());

  it('the catalogue keeps the last build of each tag per tenant: newest wins, any spelling of the tag finds it', async () => {
    const redis = new Redis(stack.redisUrl);
    try {
      const store = new CatalogueStore(redis, 90);
      const base = Date.now() - 60_000;
      const at = (s: number) => new Date(base + s * 1000).toISOString();
      const update = (tenant: string, d: number, s: number, job: string) => ({
        tenant,
        digest: digest(d),
        at: at(s),
        repository: 'docker.io/library/lastbuild',
        repositories: ['docker.io/library/lastbuild'],
        references: ['docker.io/library/lastbuild:1'],
        build_job: job,
      });
      await store.apply(update('x', 2, 2, 'job-2'));
      await store.apply(update('x', 1, 1, 'job-1')); // a late write of an older build
      await store.apply({ ...update('x', 3, 3, 'copy'), build_job: undefined }); // a copy to the tag is not a build of it
      await store.apply(update('y', 9, 9, 'job-y'));
      const found = await store.lastBuild('x', 'lastbuild:1');
      assert.deepEqual(found, { reference: 'docker.io/library/lastbuild:1', digest: digest(2), build_job: 'job-2', at: at(2) });
      assert.equal((await store.lastBuild('y', 'docker.io/library/lastbuild:1'))?.build_job, 'job-y');
      assert.equal(await store.lastBuild('z', 'lastbuild:1'), undefined);
      assert.equal(await store.lastBuild('x', 'lastbuild:2'), undefined);
      const ttl = await redis.pttl('stv:tag-build:x:docker.io/library/lastbuild:1');
      assert.ok(ttl > 89 * 86_400_000 && ttl <= 90 * 86_400_000, `kept as long as the record: ${ttl}`);
    } finally {
      redis.disconnect();
    }
  });

  it('the second build of t/app:1 lists the packages and findings that changed; the first has none', async () => {
    const one = await build(teamA, first, plain);
    assert.equal(one.result.diff, undefined, 'a first build has nothing to compare with');
    assert.ok(one.result.sbom?.length, 'the pipeline stored an SBOM');
    const two = await build(teamA, second, withoutTar);
    const diff = two.result.diff;
    assert.ok(Array.isArray(diff) && diff.length === 1, JSON.stringify(two.result.diff));
    const [d] = diff;
    assert.deepEqual(d.against, { tags: [tag], digest: one.result.build.digest, build_job: one.id, built_at: one.finished_at });
    assert.equal(d.platform, one.result.sbom[0].platform);
    assert.equal(d.previous_platform, undefined);
    const names = (list: { name: string; type: string }[]) => list.map((p) => `${p.type}/${p.name}`);
    assert.deepEqual(names(d.packages.added), ['npm/ms']);
    assert.deepEqual(names(d.packages.removed), ['deb/tar', 'npm/left-pad']);
    assert.match(d.packages.removed[0].version, /^1\.34\+dfsg/);
    assert.deepEqual(d.packages.changed, [{ name: 'lodash', type: 'npm', from: '4.17.21', to: '4.17.20' }]);
    assert.deepEqual(d.packages.counts, { added: 1, removed: 2, changed: 1 });
    assert.equal(d.packages.truncated, false);
    const ids = (list: { id: string; package: string }[]) => list.map((f) => `${f.id} ${f.package}`);
    assert.deepEqual(ids(d.findings.introduced), ['CVE-2021-23337 lodash']);
    assert.deepEqual(ids(d.findings.resolved), ['CVE-2019-9923 tar']);
    assert.deepEqual(d.findings.severity_changed, []);
    assert.equal(d.findings.db_updated_at.previous, d.findings.db_updated_at.current, 'same DB: only the image changed');
    // What the API shows is what the job's record holds.
    const fetched = (await request(server).get(`/v1/jobs/${two.id}`).set(teamA).expect(200)).body;
    assert.deepEqual(fetched.result.diff, diff);
  });

  it("another tenant building the same tag never gets a diff against the first tenant's builds", async () => {
    const mine = await build(teamB, second, withoutTar);
    assert.equal(mine.result.diff, undefined, JSON.stringify(mine.result.diff));
    // Its next build is compared with its own build only.
    const next = await build(teamB, first, plain);
    const [d] = next.result.diff;
    assert.equal(next.result.diff.length, 1);
    assert.equal(d.against.build_job, mine.id);
    assert.deepEqual(
      d.packages.added.map((p: { name: string }) => p.name),
      ['tar', 'left-pad'],
    );
    assert.deepEqual(
      d.findings.introduced.map((f: { id: string }) => f.id),
      ['CVE-2019-9923'],
    );
    assert.deepEqual(
      d.findings.resolved.map((f: { id: string }) => f.id),
      ['CVE-2021-23337'],
    );
    // team-a's job is not team-b's to read.
    await request(server).get(`/v1/jobs/${mine.id}`).set(teamA).expect(404);
  });
});
