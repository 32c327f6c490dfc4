import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });

// Named policies on the real stack: real Redis, registry, buildkitd, and Trivy with the
// project's test DB (apt LOW unfixed, tar fixable, zlib CRITICAL will-not-fix, lodash HIGH
// fixed in 4.17.21; see test/trivy-db).
describe('named policies (PUT /v1/policies/{name}) judging real Trivy scans', () => {
  let stack: Stack;
  let server: any;
  let image: string;
  let teamB: string;
  let reader: string;
  const put = (name: string, body: unknown, auth = AUTH) =>
    request(server)
      .put(`/v1/policies/${name}`)
      .set(auth)
      .send(body as object);
  const submit = (body: object, auth = AUTH) => request(server).post('/v1/jobs').set(auth).send(body);
  const finished = async (id: string, auth = AUTH) => {
    const deadline = Date.now() + 240_000;
    for (;;) {
      const job = (await request(server).get(`/v1/jobs/${id}`).set(auth).expect(200)).body;
      if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return job;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const scanWith = async (policy: unknown, auth = AUTH) => {
    const job = await finished((await submit({ action: 'scan', image, scanners: ['vuln'], policy }, auth).expect(202)).body.id, auth);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    return job;
  };

  before(async () => {
    const cacheDir = await makeTrivyCache();
    stack = await startStack({ buildkit: true, overrides: { trivy: { cacheDir, dbUpdate: false } } });
    server = stack.app.getHttpServer();
    const upload = await uploadContext(
      server,
      await tarGz({ 'node_modules/lodash/package.json': JSON.stringify({ name: 'lodash', version: '4.17.20', license: 'MIT' }) }),
    );
    image = `${stack.registry.address}/team/policied:1`;
    const built = await waitForJob(
      server,
      (
        await submit({
          action: 'build',
          context: { upload: upload.body.digest },
          dockerfile_inline: 'FROM debian:bookworm-slim\nCOPY node_modules /app/node_modules\n',
          tags: [image],
        }).expect(202)
      ).body.id,
    );
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
    const key = async (tenant: string, scopes: string[], repositories?: string[]) =>
      (await request(server).post('/v1/api-keys').set(AUTH).send({ tenant, scopes, repositories }).expect(201)).body.key as string;
    // team-b may read the image: tenancy is about its policies here, not the repository.
    teamB = await key('team-b', ['jobs:read', 'jobs:write'], [`${stack.registry.address}/team/**`]);
    reader = await key('default', ['jobs:read']);
  });
  after(async () => stack?.stop());

  it('stores versioned policies per tenant: PUT, GET, list, DELETE; refuses bad names and bodies', async () => {
    const created = (await put('ci-check', { max_high: 1 }).expect(201)).body;
    assert.deepEqual([created.name, created.version, created.rules], ['ci-check', 1, { max_high: 1 }]);
    const replaced = (await put('ci-check', { max_high: 0, max_scan_age: '24h' }).expect(200)).body;
    assert.equal(replaced.version, 2);
    assert.equal(replaced.created_at, created.created_at);
    const got = (await request(server).get('/v1/policies/ci-check').set(bearer(reader)).expect(200)).body;
    assert.deepEqual(got, replaced);
    assert.ok((await request(server).get('/v1/policies').set(AUTH).expect(200)).body.items.some((p: any) => p.name === 'ci-check'));

    const badName = (await put('Bad_Name', { max_high: 0 }).expect(400)).body.error;
    assert.equal(badName.code, 'VALIDATION_FAILED');
    const badBody = (await put('x', { deny_packages: [{ name: 'lodash', versions: '<<1' }], max_scan_age: 'soon' }).expect(400)).body.error;
    assert.deepEqual(badBody.details.fields.map((f: any) => f.path).sort(), ['deny_packages.0.versions', 'max_scan_age']);
    await put('x', { max_high: 0 }, bearer(reader)).expect(403);

    await request(server).delete('/v1/policies/ci-check').set(AUTH).expect(204);
    await request(server).get('/v1/policies/ci-check').set(AUTH).expect(404);
    await request(server).delete('/v1/policies/ci-check').set(AUTH).expect(404);
  });

  it('passes and fails the same image by name; the job records the policy and the verdict names the failed rules', async () => {
    await put('lenient', {
      max_critical: 0,
      only_fixable: true,
      deny_packages: [{ name: 'lodash', versions: '>=4.17.21' }],
      max_scan_age: '1h',
    }).expect(201);
    await put('no-old-lodash', {
      only_fixable: true,
      max_critical: 0,
      deny_packages: [
        { name: 'lodash', versions: '<4.17.21' },
        { name: 'tar', versions: '<1.34+dfsg-1.2+deb12u2' },
      ],
    }).expect(201);

    const pass = await scanWith('lenient');
    assert.equal(pass.result.policy.passed, true, JSON.stringify(pass.result.policy.violations));
    assert.ok(
      pass.result.vulnerabilities.some((v: any) => v.id === 'CVE-2023-45853' && v.severity === 'CRITICAL'),
      'the unfixed CRITICAL is there',
    );
    assert.deepEqual(pass.result.policy.named_policy, { name: 'lenient', version: 1 });
    assert.equal(pass.request.policy, 'lenient');
    assert.deepEqual([pass.request.policy_snapshot.name, pass.request.policy_snapshot.version], ['lenient', 1]);
    assert.ok(pass.result.platforms[0].policy.not_counted.unfixed >= 2, 'apt and zlib are unfixed');

    const fail = await scanWith('no-old-lodash');
    const policy = fail.result.policy;
    assert.equal(policy.passed, false);
    assert.deepEqual(policy.rules_failed, ['deny_packages']);
    assert.deepEqual(policy.violations.map((v: any) => [v.rule, v.package, v.version]).sort(), [
      ['deny_packages', 'lodash', '4.17.20'],
      ['deny_packages', 'tar', '1.34+dfsg-1.2+deb12u1'],
    ]);
    assert.equal(fail.result.cached, true, 'the second scan of the digest came from the cache: its report still gives the packages');

    // A policy edited after a job keeps the job's snapshot; the next job sees the new version.
    await put('lenient', { max_critical: 0 }).expect(200);
    assert.equal((await request(server).get(`/v1/jobs/${pass.id}`).set(AUTH).expect(200)).body.request.policy_snapshot.version, 1);
    const edited = await scanWith('lenient');
    assert.deepEqual(edited.result.policy.named_policy, { name: 'lenient', version: 2 });
    assert.equal(edited.result.policy.passed, false, 'without only_fixable the CRITICAL counts');
  });

  it("counts a fix's grace from the advisory's PublishedDate in Trivy's report", async () => {
    await put('grace-long', { max_high: 0, only_fixable: true, fix_grace_days: 3650 }).expect(201);
    await put('grace-short', { max_high: 0, only_fixable: true, fix_grace_days: 30 }).expect(201);
    const long = await scanWith('grace-long');
    assert.equal(long.result.policy.passed, true, JSON.stringify(long.result.policy.violations));
    const inGrace = long.result.platforms[0].policy.not_counted.in_grace.find((g: any) => g.id === 'CVE-2021-23337');
    assert.equal(inGrace.fix_available_since, '2021-02-15T13:15:12.000Z', "the test DB's PublishedDate for the lodash advisory");
    const short = await scanWith('grace-short');
    assert.ok(short.result.policy.violations.some((v: any) => v.id === 'CVE-2021-23337' && v.rule === 'max_high=0'));
  });

  it('fails a build whose scan names a policy its image breaks, naming the denied package', async () => {
    const job = await waitForJob(
      server,
      (
        await submit({
          action: 'build',
          dockerfile_inline: 'FROM debian:bookworm-slim\n',
          tags: [`${stack.registry.address}/team/policied-base:1`],
          scan: { scanners: ['vuln'], policy: 'no-old-lodash' },
        }).expect(202)
      ).body.id,
    );
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'POLICY_FAILED');
    assert.match(job.error.message, /tar@1\.34\+dfsg-1\.2\+deb12u1/);
    assert.equal(job.request.scan.policy_snapshot.name, 'no-old-lodash');
  });

  it('refuses an unknown name, and keeps each tenant to its own policies', async () => {
    const nope = (await submit({ action: 'scan', image, policy: 'nope' }).expect(400)).body.error;
    assert.equal(nope.code, 'VALIDATION_FAILED');
    assert.deepEqual(nope.details.fields, [{ path: 'policy', message: 'no policy named nope (PUT /v1/policies/nope first)' }]);
    const buildNope = (
      await submit({ action: 'build', dockerfile_inline: 'FROM scratch\n', tags: [image], scan: { policy: 'nope' } }).expect(400)
    ).body.error;
    assert.equal(buildNope.details.fields[0].path, 'scan.policy');

    // team-b sees none of default's policies, and cannot name them.
    await request(server).get('/v1/policies/no-old-lodash').set(bearer(teamB)).expect(404);
    await request(server).delete('/v1/policies/no-old-lodash').set(bearer(teamB)).expect(404);
    assert.deepEqual((await request(server).get('/v1/policies').set(bearer(teamB)).expect(200)).body.items, []);
    await submit({ action: 'scan', image, policy: 'no-old-lodash' }, bearer(teamB)).expect(400);

    // Its own policy of the same name judges its jobs only.
    await put('no-old-lodash', { deny_packages: [{ name: 'left-pad' }] }, bearer(teamB)).expect(201);
    const theirs = await scanWith('no-old-lodash', bearer(teamB));
    assert.equal(theirs.result.policy.passed, true);
    assert.deepEqual(theirs.result.policy.named_policy, { name: 'no-old-lodash', version: 1 });
    const ours = (await request(server).get('/v1/policies/no-old-lodash').set(AUTH).expect(200)).body;
    assert.equal(ours.rules.deny_packages[0].name, 'lodash', "team-b's PUT did not touch default's policy");
  });
});
