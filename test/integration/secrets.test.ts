import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { dumpRedis } from '../support/redis-dump.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const unique = (label: string) => `${label}-${randomBytes(12).toString('hex')}`;

/** A build whose RUN step passes only when the mounted secret equals `expected`. */
const checkingBuild = (name: string, expected: string) => ({
  action: 'build',
  dockerfile_inline:
    `FROM debian:bookworm-slim\nRUN --mount=type=secret,id=${name},required=true ` +
    `test "$(cat /run/secrets/${name})" = "${expected}" && echo secret-matched\n`,
  secrets: [name],
  // BuildKit leaves secrets out of its cache keys: without this a changed value would hit the cache.
  no_cache: true,
});

describe('tenant build secrets (PUT /v1/secrets) with real Redis and buildkitd', () => {
  let stack: Stack;
  let server: any;
  let teamB: string;
  let reader: string;
  const put = (name: string, body: unknown, auth = AUTH) =>
    request(server)
      .put(`/v1/secrets/${encodeURIComponent(name)}`)
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

  before(async () => {
    stack = await startStack({ buildkit: true });
    server = stack.app.getHttpServer();
    teamB = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'team-b', scopes: ['jobs:read', 'jobs:write', 'secrets:write'] })
        .expect(201)
    ).body.key;
    reader = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'default', scopes: ['jobs:read', 'jobs:write'] })
        .expect(201)
    ).body.key;
  });
  after(async () => stack?.stop());

  it('creates (201), replaces (200), lists and deletes, and never answers with the value', async () => {
    const [first, second] = [unique('v1'), unique('v2')];
    const created = await put('npm_token', { value: first }).expect(201);
    assert.deepEqual(Object.keys(created.body).sort(), ['created_at', 'name', 'updated_at']);
    assert.equal(created.body.name, 'npm_token');
    assert.equal(created.body.created_at, created.body.updated_at);
    await new Promise((r) => setTimeout(r, 5));
    const replaced = await put('npm_token', { value: second }).expect(200);
    assert.equal(replaced.body.created_at, created.body.created_at, 'created_at kept');
    assert.ok(replaced.body.updated_at > created.body.updated_at, 'updated_at moved');
    await put('pip.conf', { value: 'x' }).expect(201);

    const one = await request(server).get('/v1/secrets/npm_token').set(AUTH).expect(200);
    assert.deepEqual(one.body, replaced.body);
    const list = await request(server).get('/v1/secrets').set(AUTH).expect(200);
    assert.deepEqual(
      list.body.items.map((s: { name: string }) => s.name),
      ['npm_token', 'pip.conf'],
    );
    for (const text of [created.text, replaced.text, one.text, list.text])
      assert.ok(!text.includes(first) && !text.includes(second), 'no value in any answer');

    await request(server).delete('/v1/secrets/pip.conf').set(AUTH).expect(204);
    const gone = await request(server).delete('/v1/secrets/pip.conf').set(AUTH).expect(404);
    assert.equal(gone.body.error.code, 'NOT_FOUND');
    await request(server).get('/v1/secrets/pip.conf').set(AUTH).expect(404);
    assert.deepEqual(
      (await request(server).get('/v1/secrets').set(AUTH).expect(200)).body.items.map((s: { name: string }) => s.name),
      ['npm_token'],
    );
  });

  it('refuses bad names and bodies with 400 VALIDATION_FAILED, without echoing the value, and needs secrets:write', async () => {
    const value = unique('refused');
    for (const name of ['-leading-dash', 'a:b', 'x'.repeat(65), 'spa ce']) {
      const res = await put(name, { value }).expect(400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        res.body.error.details.fields.map((f: { path: string }) => f.path),
        ['name'],
      );
    }
    const bodies: [unknown, string][] = [
      [{}, 'value'],
      [{ value: '' }, 'value'],
      [{ value: 42 }, 'value'],
      [{ value: `${value}\u0000` }, 'value'],
      [{ value: 'é'.repeat(32 * 1024 + 1) }, 'value'], // 64 KiB + 2 bytes of UTF-8
      [{ value, extra: true }, 'extra'],
      [[value], 'body'],
    ];
    for (const [body, path] of bodies) {
      const res = await put('ok-name', body).expect(400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED', JSON.stringify(body).slice(0, 80));
      assert.deepEqual(
        res.body.error.details.fields.map((f: { path: string }) => f.path),
        [path],
        JSON.stringify(res.body),
      );
      assert.ok(!res.text.includes(value), 'the refused value is not echoed');
    }
    await put('ok-name', { value: 'é'.repeat(32 * 1024) }).expect(201); // exactly 64 KiB
    await request(server).get('/v1/secrets/ok-name').set(AUTH).expect(200);
    await request(server).get('/v1/secrets/a:b').set(AUTH).expect(400);
    await request(server).delete('/v1/secrets/ok-name').set(AUTH).expect(204);

    const denied = await put('npm_token', { value }, bearer(reader)).expect(403);
    assert.equal(denied.body.error.details.required_scope, 'secrets:write');
    await request(server).get('/v1/secrets').set(bearer(reader)).expect(403);
    await request(server).get('/v1/secrets').expect(401);
  });

  it('keeps only ciphertext in Redis', async () => {
    const value = unique('at-rest');
    await put('at-rest', { value }).expect(201);
    const redis = new Redis(stack.redisUrl);
    try {
      const stored = await redis.hgetall('stv:secret:default:at-rest');
      assert.deepEqual(Object.keys(stored).sort(), ['created_at', 'sealed', 'updated_at']);
      assert.match(stored.sealed!, /^v1\./);
      assert.ok(await redis.zscore('stv:secrets:default', 'at-rest'), 'indexed under its tenant');
      const everything = JSON.stringify(await dumpRedis(redis));
      for (const form of [value, Buffer.from(value).toString('base64'), Buffer.from(value).toString('hex')])
        assert.ok(!everything.includes(form), `plaintext in Redis (${form.slice(0, 12)}…)`);
    } finally {
      redis.disconnect();
    }
  });

  it('mounts the value into RUN: a build expecting it passes, one expecting another fails until the secret is replaced', async () => {
    const [value, other] = [unique('mounted'), unique('other')];
    await put('api-token', { value }).expect([200, 201]);
    const right = await finished((await submit(checkingBuild('api-token', value)).expect(202)).body.id);
    assert.equal(right.state, 'succeeded', JSON.stringify(right.error));
    assert.deepEqual(right.request.secrets, ['api-token'], 'the job keeps the name only');

    const wrong = await finished((await submit(checkingBuild('api-token', other)).expect(202)).body.id);
    assert.equal(wrong.state, 'failed');
    assert.equal(wrong.error.code, 'BUILD_FAILED');
    assert.ok(!JSON.stringify(wrong).includes(value), 'the failure does not show the value');

    await put('api-token', { value: other }).expect(200);
    const replaced = await finished((await submit(checkingBuild('api-token', other)).expect(202)).body.id);
    assert.equal(replaced.state, 'succeeded', 'the replaced value reaches the next build');
  });

  it("hides a tenant's secret from another tenant: 404 on it, 400 when a build names it, its own value under the same name", async () => {
    const [mine, theirs] = [unique('default'), unique('team-b')];
    await put('shared-name', { value: mine }).expect([200, 201]);
    await put('only-default', { value: mine }).expect([200, 201]);

    const missing = await request(server).get('/v1/secrets/only-default').set(bearer(teamB)).expect(404);
    const never = await request(server).get('/v1/secrets/never-existed').set(bearer(teamB)).expect(404);
    assert.equal(
      missing.body.error.message.replace('only-default', 'X'),
      never.body.error.message.replace('never-existed', 'X'),
      'no hint that it exists',
    );
    await request(server).delete('/v1/secrets/only-default').set(bearer(teamB)).expect(404);
    assert.deepEqual((await request(server).get('/v1/secrets').set(bearer(teamB)).expect(200)).body.items, []);
    await request(server).get('/v1/secrets/only-default').set(AUTH).expect(200);

    for (const [auth, name] of [
      [bearer(teamB), 'only-default'],
      [AUTH, 'nobody-has-this'],
    ] as const) {
      const refused = await submit(checkingBuild(name, 'x'), auth).expect(400);
      assert.equal(refused.body.error.code, 'VALIDATION_FAILED');
      assert.deepEqual(
        refused.body.error.details.fields.map((f: { path: string }) => f.path),
        ['secrets.0'],
      );
    }

    await put('shared-name', { value: theirs }, bearer(teamB)).expect(201);
    const b = await finished((await submit(checkingBuild('shared-name', theirs), bearer(teamB)).expect(202)).body.id, bearer(teamB));
    assert.equal(b.state, 'succeeded', `team-b's build sees team-b's value: ${JSON.stringify(b.error)}`);
    const a = await finished((await submit(checkingBuild('shared-name', mine)).expect(202)).body.id);
    assert.equal(a.state, 'succeeded', `default's build still sees its own: ${JSON.stringify(a.error)}`);
  });

  it('fails a queued build whose secret was deleted before it ran, naming the secret only', async () => {
    const value = unique('deleted');
    await put('short-lived', { value }).expect(201);
    // Blocks both build slots so the next build stays queued while the secret goes away.
    const blockers = await Promise.all(
      [1, 2].map(
        async (n) =>
          (
            await submit({
              action: 'build',
              dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep 4 && echo blocker-${n}\n`,
              no_cache: true,
            }).expect(202)
          ).body.id,
      ),
    );
    const queued = (await submit(checkingBuild('short-lived', value)).expect(202)).body.id;
    await request(server).delete('/v1/secrets/short-lived').set(AUTH).expect(204);
    const job = await finished(queued);
    await Promise.all(blockers.map((id) => finished(id)));
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'SECRET_NOT_FOUND', JSON.stringify(job.error));
    assert.match(job.error.message, /short-lived/);
  });
});
