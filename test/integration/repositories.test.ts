import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import request from 'supertest';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { jobsClient } from '../support/grpc-jobs.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const DOCKERFILE = 'FROM debian:bookworm-slim\nRUN true\n';

/**
 * Repositories per tenant (issue 13) with a real Redis, registry and workers (no
 * buildkitd: every build here is refused at submission, and push jobs copy through the
 * registry API). The registry is also the docker.io mirror, as with `serve`.
 */
describe('repositories per tenant', () => {
  let stack: Stack;
  let server: any;
  let reg: string;
  let teamB: string;
  let everywhere: string;
  const submit = (body: object, auth: Record<string, string>) => request(server).post('/v1/jobs').set(auth).send(body);
  const finished = async (id: string, auth: Record<string, string>) => {
    for (const deadline = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 150))) {
      const job = (await request(server).get(`/v1/jobs/${id}`).set(auth).expect(200)).body;
      if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return job;
      assert.ok(Date.now() < deadline, `job ${id} still ${job.state}`);
    }
  };
  const run = async (body: object, auth: Record<string, string>) => {
    const job = await finished((await submit(body, auth).expect(202)).body.id, auth);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    return job;
  };
  const refused = async (body: object, auth: Record<string, string>, path: string, reference: string) => {
    const res = await submit(body, auth).expect(403);
    assert.equal(res.body.error.code, 'REPOSITORY_FORBIDDEN', JSON.stringify(res.body));
    assert.equal(res.body.error.details.path, path, JSON.stringify(res.body.error));
    assert.equal(res.body.error.details.reference, reference);
    return res.body.error;
  };
  const createKey = (body: object, auth: Record<string, string> = AUTH) => request(server).post('/v1/api-keys').set(auth).send(body);

  before(async () => {
    stack = await startStack();
    server = stack.app.getHttpServer();
    reg = stack.registry.address;
    teamB = (await createKey({ tenant: 'team-b', scopes: ['jobs:read', 'jobs:write'], repositories: [`${reg}/team-b/*`] }).expect(201)).body
      .key;
    everywhere = (await createKey({ tenant: 'team-x', scopes: ['jobs:read', 'jobs:write'], repositories: ['*/**'] }).expect(201)).body.key;
    // team-a's image, put there by the operator.
    await run({ action: 'push', image: `${reg}/library/debian:bookworm-slim`, destinations: [`${reg}/team-a/app:1`] }, AUTH);
  });
  after(async () => {
    await stack?.stop();
  });

  it('validates, normalises and lists the patterns of a key; a tenant admin key grants no more than its own', async () => {
    const made = (
      await createKey({
        tenant: 'team-n',
        scopes: ['jobs:read'],
        repositories: ['Registry.Example:5000/team-n/**', 'debian', 'debian'],
      }).expect(201)
    ).body;
    assert.deepEqual(made.repositories, ['registry.example:5000/team-n/**', 'docker.io/library/debian']);
    const listed = (await request(server).get('/v1/api-keys').set(AUTH).expect(200)).body.items;
    assert.deepEqual(listed.find((k: { id: string }) => k.id === made.id).repositories, made.repositories);
    assert.equal(listed.find((k: { tenant: string }) => k.tenant === 'team-b').repositories[0], `${reg}/team-b/*`);
    const bad = await createKey({
      tenant: 'team-n',
      scopes: ['jobs:read'],
      repositories: ['ok.example/x', 'a b', `${reg}/x:1`, '**'],
    }).expect(400);
    assert.deepEqual(
      bad.body.error.details.fields.map((f: { path: string }) => f.path),
      ['repositories.1', 'repositories.2', 'repositories.3'],
    );
    await createKey({
      tenant: 'team-n',
      scopes: ['jobs:read'],
      repositories: Array.from({ length: 65 }, (_, i) => `r.example/p${i}`),
    }).expect(400);

    const admin = (await createKey({ tenant: 'team-n', scopes: ['admin'], repositories: [`${reg}/team-n/**`] }).expect(201)).body.key;
    const wider = await createKey(
      { tenant: 'team-n', scopes: ['jobs:write'], repositories: [`${reg}/team-n/app`, `${reg}/team-a/*`] },
      bearer(admin),
    ).expect(403);
    assert.equal(wider.body.error.code, 'REPOSITORY_FORBIDDEN');
    assert.equal(wider.body.error.details.path, 'repositories.1');
    const narrower = (
      await createKey(
        { tenant: 'team-n', scopes: ['jobs:write'], repositories: [`${reg}/team-n/app`, `${reg}/team-n/sub/*`] },
        bearer(admin),
      ).expect(201)
    ).body;
    assert.deepEqual(narrower.repositories, [`${reg}/team-n/app`, `${reg}/team-n/sub/*`]);
    const inherited = (await createKey({ tenant: 'team-n', scopes: ['jobs:write'] }, bearer(admin)).expect(201)).body;
    assert.deepEqual(inherited.repositories, [`${reg}/team-n/**`], "a key made without repositories gets its maker's");
  });

  it("refuses every write into another tenant's repositories before queueing (REST and gRPC)", async () => {
    const b = bearer(teamB);
    const ownTag = `${reg}/team-b/app:1`;
    await refused(
      { action: 'build', dockerfile_inline: DOCKERFILE, tags: [ownTag, `${reg}/team-a/app:2`] },
      b,
      'tags.1',
      `${reg}/team-a/app:2`,
    );
    await refused(
      { action: 'build', dockerfile_inline: DOCKERFILE, registry: reg, image: 'team-a/app:2' },
      b,
      'image',
      `${reg}/team-a/app:2`,
    );
    await refused(
      { action: 'build', dockerfile_inline: DOCKERFILE, tags: [ownTag], push_to: [`${reg}/team-a/app:3`] },
      b,
      'push_to.0',
      `${reg}/team-a/app:3`,
    );
    await refused(
      { action: 'build', dockerfile_inline: DOCKERFILE, tags: [`${reg}/team-a/app:4`], sign: true },
      b,
      'tags.0',
      `${reg}/team-a/app:4`,
    );
    await refused(
      { action: 'push', image: ownTag, destinations: [`${reg}/team-b/ok:1`, `${reg}/team-a/app:5`] },
      b,
      'destinations.1',
      `${reg}/team-a/app:5`,
    );
    await refused({ action: 'push', image: ownTag, registry: '127.0.0.2:5000' }, b, 'registry', '127.0.0.2:5000/team-b/app:1');
    await refused({ action: 'sign', image: `${reg}/team-a/app:1` }, b, 'image', `${reg}/team-a/app:1`);
    // Deeper than one segment is outside `team-b/*`.
    await refused(
      { action: 'push', image: ownTag, destinations: [`${reg}/team-b/sub/app:1`] },
      b,
      'destinations.0',
      `${reg}/team-b/sub/app:1`,
    );

    const grpc = jobsClient(stack.grpcAddress, teamB);
    try {
      await assert.rejects(
        grpc.submit({ push: { image: ownTag, destinations: [`${reg}/team-a/app:6`] } }),
        (err: { code: number; details: string }) => {
          assert.equal(err.code, status.PERMISSION_DENIED, err.details);
          assert.match(err.details, /^REPOSITORY_FORBIDDEN: destinations\.0: /);
          return true;
        },
      );
    } finally {
      grpc.close();
    }
    assert.deepEqual((await request(server).get('/v1/jobs').set(b).expect(200)).body.items, [], 'nothing refused was queued');
  });

  it("refuses reading another tenant's repositories: inspect (job and GET), scan, verify, push source", async () => {
    const b = bearer(teamB);
    const theirs = `${reg}/team-a/app:1`;
    await refused({ action: 'inspect', image: theirs }, b, 'image', theirs);
    await refused({ action: 'scan', image: theirs }, b, 'image', theirs);
    await refused({ action: 'verify', image: theirs }, b, 'image', theirs);
    await refused({ action: 'optimize', image: theirs }, b, 'image', theirs);
    await refused({ action: 'push', image: theirs, destinations: [`${reg}/team-b/stolen:1`] }, b, 'image', theirs);
    await refused({ action: 'inspect', image: 'docker.io/team-a/app:1' }, b, 'image', 'docker.io/team-a/app:1');
    const get = await request(server).get('/v1/images/inspect').query({ ref: theirs }).set(b).expect(403);
    assert.equal(get.body.error.code, 'REPOSITORY_FORBIDDEN');
    assert.equal(get.body.error.details.path, 'ref');
    // A name that does not exist is refused the same way: no existence oracle.
    const missing = await request(server)
      .get('/v1/images/inspect')
      .query({ ref: `${reg}/team-a/nothing:1` })
      .set(b)
      .expect(403);
    assert.equal(missing.body.error.code, 'REPOSITORY_FORBIDDEN');
  });

  it('keeps Docker Hub names and library/ (the mirror) read-only for tenants, even with `*/**`', async () => {
    const x = bearer(everywhere);
    const base = `${reg}/library/debian:bookworm-slim`;
    const before = await new RegistryClient(reg).manifestDigest('library/debian', 'bookworm-slim');
    await refused({ action: 'push', image: `${reg}/team-x/app:1`, destinations: [base] }, x, 'destinations.0', base);
    await refused({ action: 'build', dockerfile_inline: DOCKERFILE, tags: [base] }, x, 'tags.0', base);
    await refused({ action: 'build', dockerfile_inline: DOCKERFILE, tags: ['debian:bookworm-slim'] }, x, 'tags.0', 'debian:bookworm-slim');
    await refused(
      { action: 'build', dockerfile_inline: DOCKERFILE, registry: reg, image: 'library/debian:bookworm-slim' },
      x,
      'image',
      base,
    );
    const hub = await refused(
      { action: 'push', image: `${reg}/team-x/app:1`, destinations: ['team-x/app:1'] },
      x,
      'destinations.0',
      'team-x/app:1',
    );
    assert.match(hub.message, /Docker Hub/);
    await refused({ action: 'sign', image: base }, x, 'image', base);
    await refused(
      { action: 'push', image: `${reg}/team-x/app:1`, destinations: [`localhost:${reg.split(':')[1]}/library/debian:bookworm-slim`] },
      x,
      'destinations.0',
      `localhost:${reg.split(':')[1]}/library/debian:bookworm-slim`,
    );
    // Reading the base is shared (STEVEDORE_SHARED_READ_REPOSITORIES), and the `*/**` key may write elsewhere.
    await run({ action: 'push', image: base, destinations: [`${reg}/team-x/app:1`] }, x);
    assert.equal(await new RegistryClient(reg).manifestDigest('library/debian', 'bookworm-slim'), before);
  });

  it('lets a tenant read the shared base and write inside its own repositories (a real push job)', async () => {
    const b = bearer(teamB);
    const copied = await run({ action: 'push', image: 'debian:bookworm-slim', destinations: [`${reg}/team-b/base:1`] }, b);
    assert.deepEqual(
      copied.result.pushed.map((p: { reference: string }) => p.reference),
      [`${reg}/team-b/base:1`],
    );
    await run({ action: 'push', image: `${reg}/team-b/base:1`, destinations: [`${reg}/team-b/copy:1`] }, b);
    const info = (
      await request(server)
        .get('/v1/images/inspect')
        .query({ ref: `${reg}/team-b/copy:1` })
        .set(b)
        .expect(200)
    ).body;
    assert.equal(info.reference, `${reg}/team-b/copy:1`);
    await run({ action: 'inspect', image: `${reg}/team-b/copy:1` }, b);
    await request(server).get('/v1/images/inspect').query({ ref: 'debian:bookworm-slim' }).set(b).expect(200);
  });

  it("never answers one tenant's inspect from another's cache through a digest reference", async () => {
    // A manifest only team-a has (the base with an annotation), inspected by team-a.
    const client = new RegistryClient(reg);
    const baseManifest = await client.getManifest('team-a/app', '1');
    const json = { ...baseManifest.json, annotations: { 'org.example.private': 'team-a' } };
    const digest = await client.putManifest('team-a/app', 'private', Buffer.from(JSON.stringify(json)), baseManifest.mediaType);
    const teamA = (await createKey({ tenant: 'team-a', scopes: ['jobs:read'], repositories: [`${reg}/team-a/*`] }).expect(201)).body.key;
    await request(server)
      .get('/v1/images/inspect')
      .query({ ref: `${reg}/team-a/app:private` })
      .set(bearer(teamA))
      .expect(200);
    // team-b names that digest in its own repository, which never held it.
    const res = await request(server)
      .get('/v1/images/inspect')
      .query({ ref: `${reg}/team-b/base@${digest}` })
      .set(bearer(teamB))
      .expect(404);
    assert.equal(res.body.error.code, 'IMAGE_NOT_FOUND');
  });

  it('lets the admin token read and write anywhere, library/ included', async () => {
    await request(server)
      .get('/v1/images/inspect')
      .query({ ref: `${reg}/team-a/app:1` })
      .set(AUTH)
      .expect(200);
    await run({ action: 'inspect', image: `${reg}/team-b/copy:1` }, AUTH);
    await run(
      { action: 'push', image: `${reg}/team-b/copy:1`, destinations: [`${reg}/team-a/from-b:1`, `${reg}/library/stevedore-admin-copy:1`] },
      AUTH,
    );
  });
});
