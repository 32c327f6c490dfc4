import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { tarGz } from '../support/build-helpers.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const sleepBuild = (seconds: number, tag: string) => ({
  action: 'build',
  dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep ${seconds} && echo ${tag}\n`,
  no_cache: true,
});

/**
 * Tenants and API keys with real Redis, registry, buildkitd and workers: scopes,
 * isolation, revocation, rate limits, the running-job cap, fair scheduling and
 * concurrency_key.
 */
describe('tenants and API keys', () => {
  let stack: Stack;
  let server: any;
  const keys: Record<string, string> = {};
  const createKey = async (body: object, auth = AUTH) =>
    (await request(server).post('/v1/api-keys').set(auth).send(body).expect(201)).body as { id: string; key: string };
  const job = (id: string, key: string) => request(server).get(`/v1/jobs/${id}`).set(bearer(key));
  const waitFor = async (id: string, key: string, states: string[], timeoutMs = 120_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const body = (await job(id, key).expect(200)).body;
      if (states.includes(body.state)) return body;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${body.state}, wanted ${states.join('|')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    stack = await startStack({ buildkit: true, overrides: { concurrency: { build: 2 } } });
    server = stack.app.getHttpServer();
    for (const tenant of ['team-a', 'team-b'])
      keys[tenant] = (await createKey({ tenant, scopes: ['jobs:read', 'jobs:write'], rate_limit_per_minute: 100_000 })).key;
  });
  after(async () => {
    await stack?.stop();
  });

  it('creates keys shown once, lists them without secrets, and revokes them at once', async () => {
    const created = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'team-r', scopes: ['jobs:read'] })
        .expect(201)
    ).body;
    assert.match(created.key, /^stvk_[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(created.scopes, ['jobs:read']);
    const listed = (await request(server).get('/v1/api-keys').set(AUTH).expect(200)).body.items;
    const mine = listed.find((k: { id: string }) => k.id === created.id);
    assert.equal(mine.tenant, 'team-r');
    assert.equal(JSON.stringify(listed).includes(created.key), false, 'a listing never shows a key');
    await request(server).get('/v1/jobs').set(bearer(created.key)).expect(200);
    await request(server).delete(`/v1/api-keys/${created.id}`).set(AUTH).expect(204);
    const refused = await request(server).get('/v1/jobs').set(bearer(created.key)).expect(401);
    assert.equal(refused.body.error.code, 'UNAUTHORIZED');
    await request(server).delete(`/v1/api-keys/${created.id}`).set(AUTH).expect(404);
    const bad = await request(server)
      .post('/v1/api-keys')
      .set(AUTH)
      .send({ tenant: '-x', scopes: ['root'] })
      .expect(400);
    assert.deepEqual(bad.body.error.details.fields.map((f: { path: string }) => f.path).sort(), ['scopes.0', 'tenant']);
  });

  it('refuses a missing scope with 403 and keeps admin keys inside their tenant', async () => {
    const reader = (await createKey({ tenant: 'team-a', scopes: ['jobs:read'] })).key;
    const denied = await request(server)
      .post('/v1/jobs')
      .set(bearer(reader))
      .send({ action: 'inspect', image: 'debian:bookworm-slim' })
      .expect(403);
    assert.equal(denied.body.error.code, 'FORBIDDEN');
    assert.equal(denied.body.error.details.required_scope, 'jobs:write');
    await request(server)
      .post('/v1/api-keys')
      .set(bearer(keys['team-a']!))
      .send({ tenant: 'team-a', scopes: ['jobs:read'] })
      .expect(403);
    const tenantAdmin = (await createKey({ tenant: 'team-a', scopes: ['admin'] })).key;
    await request(server)
      .post('/v1/api-keys')
      .set(bearer(tenantAdmin))
      .send({ tenant: 'team-b', scopes: ['jobs:read'] })
      .expect(403);
    await request(server)
      .post('/v1/api-keys')
      .set(bearer(tenantAdmin))
      .send({ tenant: 'team-a', scopes: ['jobs:read'] })
      .expect(201);
    const seen = (await request(server).get('/v1/api-keys').set(bearer(tenantAdmin)).expect(200)).body.items;
    assert.ok(seen.length > 0 && seen.every((k: { tenant: string }) => k.tenant === 'team-a'));
  });

  it("hides one tenant's jobs, events, artifacts and contexts from another", async () => {
    const [a, b] = [keys['team-a']!, keys['team-b']!];
    const submitted = (
      await request(server)
        .post('/v1/jobs')
        .set(bearer(a))
        .set('idempotency-key', 'same-key-1')
        .send({ action: 'inspect', image: 'debian:bookworm-slim' })
        .expect(202)
    ).body;
    const done = await waitFor(submitted.id, a, ['succeeded']);
    assert.equal(done.tenant, 'team-a');
    for (const path of ['', '/events?follow=false', '/artifacts']) {
      const res = await request(server).get(`/v1/jobs/${submitted.id}${path}`).set(bearer(b)).expect(404);
      assert.equal(res.body.error.code, 'NOT_FOUND');
    }
    await request(server).post(`/v1/jobs/${submitted.id}/cancel`).set(bearer(b)).expect(404);
    const listB = (await request(server).get('/v1/jobs?limit=100').set(bearer(b)).expect(200)).body.items;
    assert.equal(
      listB.some((j: { id: string }) => j.id === submitted.id),
      false,
    );
    const listA = (await request(server).get('/v1/jobs?limit=100').set(bearer(a)).expect(200)).body.items;
    assert.ok(listA.some((j: { id: string }) => j.id === submitted.id));
    assert.ok(listA.every((j: { tenant: string }) => j.tenant === 'team-a'));
    // The same Idempotency-Key in another tenant is another job, not A's.
    const other = (
      await request(server)
        .post('/v1/jobs')
        .set(bearer(b))
        .set('idempotency-key', 'same-key-1')
        .send({ action: 'inspect', image: 'debian:bookworm-slim' })
        .expect(202)
    ).body;
    assert.notEqual(other.id, submitted.id);
    // A context uploaded by A is unknown to B, although the bytes are stored once.
    const tar = await tarGz({ Dockerfile: 'FROM scratch\nCOPY a.txt /\n', 'a.txt': 'tenant a\n' });
    const upload = (await request(server).post('/v1/contexts').set(bearer(a)).set('content-type', 'application/gzip').send(tar).expect(201))
      .body;
    const refused = await request(server)
      .post('/v1/jobs')
      .set(bearer(b))
      .send({ action: 'build', context: { upload: upload.digest } })
      .expect(400);
    assert.equal(refused.body.error.code, 'CONTEXT_NOT_FOUND');
    await request(server).post('/v1/contexts').set(bearer(b)).set('content-type', 'application/gzip').send(tar).expect(200);
    await request(server)
      .post('/v1/jobs')
      .set(bearer(b))
      .send({ action: 'build', context: { upload: upload.digest } })
      .expect(202);
  });

  it('rate-limits per key with 429 and Retry-After, leaving other keys alone', async () => {
    const limited = (await createKey({ tenant: 'team-rl', scopes: ['jobs:read'], rate_limit_per_minute: 5 })).key;
    for (let i = 0; i < 5; i++) await request(server).get('/v1/jobs').set(bearer(limited)).expect(200);
    const res = await request(server).get('/v1/jobs').set(bearer(limited)).expect(429);
    assert.equal(res.body.error.code, 'RATE_LIMITED');
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${res.headers['retry-after']}`);
    await request(server).get('/v1/jobs').set(bearer(keys['team-b']!)).expect(200);
  });

  it("caps a tenant's running jobs and supersedes by concurrency_key, queued or running", async () => {
    const capped = (
      await createKey({ tenant: 'team-cap', scopes: ['jobs:read', 'jobs:write'], max_concurrent_jobs: 1, rate_limit_per_minute: 100_000 })
    ).key;
    const submit = async (body: object) =>
      (await request(server).post('/v1/jobs').set(bearer(capped)).send(body).expect(202)).body.id as string;
    // 8 s: still running when `second` is checked 1.5 s after it started, on a loaded machine too.
    const first = await submit(sleepBuild(8, `cap-1-${Date.now()}`));
    const second = await submit({ ...sleepBuild(1, `cap-2-${Date.now()}`), concurrency_key: 'deploy/main' });
    await waitFor(first, capped, ['running']);
    await new Promise((r) => setTimeout(r, 1500));
    // A build slot is free (concurrency 2) but the tenant is at its cap of 1.
    assert.equal((await job(second, capped).expect(200)).body.state, 'queued');
    // Superseded while it runs (below): a 60 s sleep does not end first however slow the machine.
    const third = await submit({ ...sleepBuild(60, `cap-3-${Date.now()}`), concurrency_key: 'deploy/main' });
    const superseded = await waitFor(second, capped, ['cancelled', 'succeeded', 'failed']);
    assert.equal(superseded.state, 'cancelled');
    assert.equal(superseded.error.code, 'SUPERSEDED');
    const firstDone = await waitFor(first, capped, ['succeeded']);
    const thirdRunning = await waitFor(third, capped, ['running']);
    assert.ok(Date.parse(thirdRunning.started_at) >= Date.parse(firstDone.finished_at), 'the capped tenant never ran two jobs at once');
    // A newer job with the key supersedes the running one; another tenant's key is separate.
    await request(server)
      .post('/v1/jobs')
      .set(bearer(keys['team-b']!))
      .send({ action: 'inspect', image: 'debian:bookworm-slim', concurrency_key: 'deploy/main' })
      .expect(202);
    assert.equal((await job(third, capped).expect(200)).body.state, 'running');
    const fourth = await submit({ action: 'inspect', image: 'debian:bookworm-slim', concurrency_key: 'deploy/main' });
    const stopped = await waitFor(third, capped, ['cancelled', 'succeeded', 'failed']);
    assert.equal(stopped.state, 'cancelled');
    assert.equal(stopped.error.code, 'SUPERSEDED');
    assert.equal((await waitFor(fourth, capped, ['succeeded', 'failed'])).state, 'succeeded');
  });

  it("runs another tenant's first build within one build slot while a tenant has 100 queued", async () => {
    const [flood, other] = [keys['team-a']!, keys['team-b']!];
    const run = Date.now();
    const flooded: string[] = [];
    for (let i = 0; i < 100; i++)
      flooded.push(
        (
          await request(server)
            .post('/v1/jobs')
            .set(bearer(flood))
            .send(sleepBuild(2, `flood-${run}-${i}`))
            .expect(202)
        ).body.id,
      );
    await waitFor(flooded[1]!, flood, ['running']);
    const submittedAt = Date.now();
    const firstOther = (
      await request(server)
        .post('/v1/jobs')
        .set(bearer(other))
        .send(sleepBuild(1, `other-${run}`))
        .expect(202)
    ).body.id as string;
    const started = await waitFor(firstOther, other, ['running', 'succeeded'], 60_000);
    const waitMs = Date.parse(started.started_at) - submittedAt;
    // Which of the flood's builds started after the other tenant's was submitted and before it ran?
    const records = await Promise.all(flooded.map(async (id) => (await job(id, flood).expect(200)).body));
    const jumped = records.filter(
      (r) => r.started_at && Date.parse(r.started_at) >= submittedAt && Date.parse(r.started_at) < Date.parse(started.started_at),
    );
    console.log(
      `fairness: second tenant's first build waited ${waitMs} ms with 100 queued (${jumped.length} flood builds started ` +
        `in between; FIFO would put it behind ${records.filter((r) => r.state === 'queued').length} queued builds)`,
    );
    assert.ok(jumped.length <= 1, `${jumped.length} builds of the flooding tenant started first`);
    for (const id of flooded) await request(server).post(`/v1/jobs/${id}/cancel`).set(bearer(flood));
    await waitFor(firstOther, other, ['succeeded']);
  });
});
