import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { EventStreamHub } from '../../src/jobs/event-stream-hub.js';
import { jobsClient } from '../support/grpc-jobs.js';
import { findPlanted, plantable } from '../support/leak-search.js';
import { dumpRedis } from '../support/redis-dump.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const MAX_ID = '18446744073709551615-18446744073709551615';

/**
 * Issue 14 (API side), with two tenants on real Redis, buildkitd and workers: tenant
 * admin keys cannot lift the operator's limits, request shapes are bounded, odd ids
 * never reach Redis as a 500, live streams are capped and share Redis connections,
 * and a secret a RUN step prints never reaches events or Redis.
 */
describe('abuse: limits, shapes, ids, streams, secret masking', () => {
  let stack: Stack;
  let server: any;
  let redis: Redis;
  const keys: Record<string, string> = {};
  const probes: { what: string; status: number }[] = [];
  const probe = async (what: string, res: request.Test | Promise<request.Response>) => {
    const r = await res;
    probes.push({ what, status: r.status });
    return r;
  };
  const createKey = (body: object, auth = AUTH) => request(server).post('/v1/api-keys').set(auth).send(body);

  before(async () => {
    stack = await startStack({ buildkit: true, overrides: { streams: { perKey: 3, perTenant: 5 }, concurrency: { build: 2 } } });
    server = stack.app.getHttpServer();
    redis = new Redis(stack.redisUrl);
    for (const tenant of ['team-a', 'team-b'])
      keys[tenant] = (
        await createKey({ tenant, scopes: ['jobs:read', 'jobs:write', 'secrets:write'], rate_limit_per_minute: 100_000 }).expect(201)
      ).body.key;
  });
  after(async () => {
    const bad = probes.filter((p) => p.status < 400 || p.status >= 500);
    console.log(
      `# abuse-api probes: ${probes.length} ` +
        `tried, ${bad.length ? `NOT all 4xx: ${JSON.stringify(bad)}` : 'all 4xx'}, ${probes.filter((p) => p.status >= 500).length} ` +
        `500`,
    );
    redis?.disconnect();
    await stack?.stop();
  });

  it("keeps a tenant admin key within its own limits and the operator's ceilings", async () => {
    // The operator: team-a may run 1 job at a time, its admin key 100 requests/min.
    const adminA = (
      await createKey({ tenant: 'team-a', scopes: ['admin'], rate_limit_per_minute: 100, max_concurrent_jobs: 1 }).expect(201)
    ).body.key;
    const adminB = (await createKey({ tenant: 'team-b', scopes: ['admin'] }).expect(201)).body.key;
    for (const [what, auth, body, field] of [
      ['rate above own', adminA, { rate_limit_per_minute: 1_000_000 }, 'rate_limit_per_minute'],
      ['cap above own', adminA, { max_concurrent_jobs: 10_000 }, 'max_concurrent_jobs'],
      ['cap 2 above own 1', adminA, { max_concurrent_jobs: 2 }, 'max_concurrent_jobs'],
      ['rate above ceiling (600)', adminB, { rate_limit_per_minute: 601 }, 'rate_limit_per_minute'],
      ['cap above ceiling (8)', adminB, { max_concurrent_jobs: 9 }, 'max_concurrent_jobs'],
    ] as const) {
      const tenant = auth === adminA ? 'team-a' : 'team-b';
      const res = await probe(what, createKey({ tenant, scopes: ['jobs:read'], ...body }, bearer(auth)));
      assert.equal(res.status, 403, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'LIMIT_FORBIDDEN');
      assert.equal(res.body.error.details.path, field);
      assert.match(res.body.error.message, new RegExp(field));
    }
    assert.equal(await redis.hget('stv:tenant:team-a:limits', 'max_concurrent_jobs'), '1', "the operator's cap stands");
    // Within bounds is fine; without a rate limit the new key gets the maker's.
    const within = (
      await createKey(
        { tenant: 'team-a', scopes: ['jobs:read'], rate_limit_per_minute: 50, max_concurrent_jobs: 1 },
        bearer(adminA),
      ).expect(201)
    ).body;
    assert.equal(within.rate_limit_per_minute, 50);
    const copied = (await createKey({ tenant: 'team-a', scopes: ['jobs:read'] }, bearer(adminA)).expect(201)).body;
    assert.equal(copied.rate_limit_per_minute, 100);
    await createKey({ tenant: 'team-b', scopes: ['jobs:read'], rate_limit_per_minute: 600, max_concurrent_jobs: 8 }, bearer(adminB)).expect(
      201,
    );
    // Only the admin token raises them.
    await createKey({ tenant: 'team-a', scopes: ['jobs:read'], rate_limit_per_minute: 1_000_000, max_concurrent_jobs: 2 }).expect(201);
    await redis.hset('stv:tenant:team-a:limits', 'max_concurrent_jobs', '10000');
  });

  it('refuses oversized request shapes with 400 and field paths, writing nothing', async () => {
    const jobsBefore = (await redis.keys('stv:job:*')).length;
    const many = (n: number, f: (i: number) => [string, string]) => Object.fromEntries(Array.from({ length: n }, (_, i) => f(i)));
    const image = (i: number) => `${stack.registry.address}/team-a/x:${i}`;
    const build = { action: 'build', dockerfile_inline: 'FROM scratch\n' };
    const cases: [string, object, string][] = [
      ['400 000 build args', { ...build, build_args: many(400_000, (i) => [`A${i}`, 'x']) }, 'build_args'],
      ['101 build args', { ...build, build_args: many(101, (i) => [`A${i}`, 'x']) }, 'build_args'],
      ['a 9 KiB build arg', { ...build, build_args: { A: 'x'.repeat(9 * 1024) } }, 'build_args.A'],
      ['65 labels', { ...build, labels: many(65, (i) => [`l${i}`, 'x']) }, 'labels'],
      ['17 tags', { ...build, tags: Array.from({ length: 17 }, (_, i) => image(i)) }, 'tags'],
      ['a 600-char tag', { ...build, tags: [`${stack.registry.address}/${'a'.repeat(600)}:1`] }, 'tags.0'],
      ['9 platforms', { ...build, platforms: Array(9).fill('linux/amd64') }, 'platforms'],
      ['33 secrets', { ...build, secrets: Array.from({ length: 33 }, (_, i) => `s${i}`) }, 'secrets'],
      ['17 push_to', { ...build, tags: [image(0)], push_to: Array.from({ length: 17 }, (_, i) => image(i + 1)) }, 'push_to'],
      [
        '17 destinations',
        { action: 'push', image: image(0), destinations: Array.from({ length: 17 }, (_, i) => image(i + 1)) },
        'destinations',
      ],
      [
        '501 allow entries',
        {
          action: 'scan',
          image: 'debian:bookworm-slim',
          policy: { allow: Array.from({ length: 501 }, (_, i) => ({ id: `CVE-2024-${i}`, reason: 'r' })) },
        },
        'policy.allow',
      ],
      ['a 2 KiB image reference', { action: 'inspect', image: `debian:${'a'.repeat(2048)}` }, 'image'],
    ];
    for (const [what, body, path] of cases) {
      const started = performance.now();
      const res = await probe(what, request(server).post('/v1/jobs').set(bearer(keys['team-a']!)).send(body));
      const ms = performance.now() - started;
      if (what.startsWith('400 000'))
        console.log(
          `# abuse-api ${what} (${(JSON.stringify(body).length / 1e6).toFixed(1)} MB ` +
            `body): ${res.status} in ${ms.toFixed(0)} ms, client serialising and upload included`,
        );
      assert.equal(res.status, 400, `${what}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
      assert.ok(
        res.body.error.details.fields.some((f: { path: string }) => f.path === path),
        `${what}: ${JSON.stringify(res.body.error.details.fields.slice(0, 3))}`,
      );
      assert.ok(res.body.error.details.fields.length <= 100 && JSON.stringify(res.body).length < 20_000, `${what}: a bounded answer`);
    }
    assert.equal((await redis.keys('stv:job:*')).length, jobsBefore, 'nothing written to Redis');
  });

  it('answers odd job ids, Last-Event-ID and after_event_id with 4xx over REST and gRPC', async () => {
    const a = bearer(keys['team-a']!);
    const id = (await request(server).post('/v1/jobs').set(a).send({ action: 'inspect', image: 'debian:bookworm-slim' }).expect(202)).body
      .id as string;
    while (['queued', 'running'].includes((await request(server).get(`/v1/jobs/${id}`).set(a).expect(200)).body.state))
      await new Promise((r) => setTimeout(r, 100));
    const b = bearer(keys['team-b']!);
    const missing = '00000000-0000-4000-8000-000000000000';
    const shapes: Record<string, unknown> = {};
    for (const [what, path, auth] of [
      ['own id:events', `/v1/jobs/${id}:events`, a],
      ["other tenant's id:events", `/v1/jobs/${id}:events`, b],
      ['missing id:events', `/v1/jobs/${missing}:events`, a],
      ["other tenant's id", `/v1/jobs/${id}`, b],
      ['missing id', `/v1/jobs/${missing}`, a],
      ['not a uuid', '/v1/jobs/stv:apikeys', a],
      ['id:events/events', `/v1/jobs/${id}:events/events?follow=false`, a],
      ["other tenant's events", `/v1/jobs/${id}/events?follow=false`, b],
      ['cancel id:events', `/v1/jobs/${id}:events/cancel`, a],
    ] as const) {
      const res = await probe(what, (what.startsWith('cancel') ? request(server).post(path) : request(server).get(path)).set(auth));
      assert.equal(res.status, 404, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
      shapes[what] = Object.keys(res.body.error).sort().join(',') + res.body.error.code;
    }
    assert.equal(new Set(Object.values(shapes)).size, 1, 'the same answer for missing, odd and foreign ids');
    for (const lastEventId of [
      '18446744073709551616-0',
      '0-18446744073709551616',
      'abc',
      '1-2-3',
      '-1-0',
      '1-',
      '99999999999999999999999-0',
      '1.5-0',
    ]) {
      const res = await probe(
        `Last-Event-ID ${JSON.stringify(lastEventId)}`,
        request(server).get(`/v1/jobs/${id}/events?follow=false`).set(a).set('last-event-id', lastEventId),
      );
      assert.equal(res.status, 400, `${lastEventId}: ${res.status}`);
      assert.equal(res.body.error.details.fields[0].path, 'Last-Event-ID');
    }
    assert.deepEqual(
      (await request(server).get(`/v1/jobs/${id}/events?follow=false`).set(a).set('last-event-id', MAX_ID).expect(200)).body.items,
      [],
    );
    // The stream form after the largest id: ends at once (the job is finished), no Redis error.
    const sse = await fetch(`${stack.base}/v1/jobs/${id}/events`, { headers: { ...a, 'last-event-id': MAX_ID } });
    const text = await sse.text();
    assert.equal(sse.status, 200);
    assert.doesNotMatch(text, /event: error|ERR|Invalid stream ID/i);

    const grpc = jobsClient(stack.grpcAddress, keys['team-a']);
    const grpcB = jobsClient(stack.grpcAddress, keys['team-b']);
    try {
      const grpcCase = async (what: string, call: Promise<unknown>, code: number) => {
        const err = (await call.then(
          () => ({ code: 0 }),
          (e: { code: number }) => e,
        )) as { code: number; details?: string };
        probes.push({ what: `gRPC ${what}`, status: { 3: 400, 5: 404, 8: 429 }[err.code] ?? 500 });
        assert.equal(err.code, code, `${what}: ${JSON.stringify(err)}`);
      };
      await grpcCase('Get id:events', grpc.get(`${id}:events`), 5);
      await grpcCase('Get other tenant', grpcB.get(id), 5);
      await grpcCase('Cancel id:events', grpc.cancel(`${id}:events`), 5);
      await grpcCase('Watch id:events', grpc.watch(`${id}:events`), 5);
      await grpcCase('Watch after_event_id overflow', grpc.watch(id, '18446744073709551616-0'), 3);
      await grpcCase('Watch after_event_id junk', grpc.watch(id, 'x'), 3);
      assert.deepEqual(await grpc.watch(id, MAX_ID), [], 'after the largest id: nothing, and the watch ends');
    } finally {
      grpc.close();
      grpcB.close();
    }
  });

  it('caps live streams per key and per tenant, sharing Redis connections', async () => {
    const a = bearer(keys['team-a']!);
    const id = (
      await request(server)
        .post('/v1/jobs')
        .set(a)
        .send({ action: 'build', dockerfile_inline: 'FROM debian:bookworm-slim\nRUN sleep 40\n', no_cache: true })
        .expect(202)
    ).body.id as string;
    const clients = async () =>
      String(await redis.client('LIST'))
        .trim()
        .split('\n').length;
    const idle = await clients();
    const open: AbortController[] = [];
    const stream = async (auth: Record<string, string>) => {
      const controller = new AbortController();
      const res = await fetch(`${stack.base}/v1/jobs/${id}/events`, { headers: auth, signal: controller.signal });
      if (res.status === 200) open.push(controller);
      else await res.text();
      return res;
    };
    for (let i = 0; i < 3; i++) assert.equal((await stream(a)).status, 200);
    const fourth = await stream(a);
    probes.push({ what: 'SSE over the per-key cap', status: fourth.status });
    assert.equal(fourth.status, 429);
    // Another key of the same tenant: 2 more, then the tenant's cap of 5.
    const a2 = bearer((await createKey({ tenant: 'team-a', scopes: ['jobs:read'], rate_limit_per_minute: 1000 }).expect(201)).body.key);
    for (let i = 0; i < 2; i++) assert.equal((await stream(a2)).status, 200);
    const sixth = await stream(a2);
    probes.push({ what: 'SSE over the per-tenant cap', status: sixth.status });
    assert.equal(sixth.status, 429);
    const grpc = jobsClient(stack.grpcAddress, keys['team-a']);
    const watched = await grpc.watch(id).then(
      () => 0,
      (e: { code: number }) => e.code,
    );
    probes.push({ what: 'gRPC Watch over the cap', status: watched === 8 ? 429 : 500 });
    grpc.close();
    assert.equal(watched, 8, 'RESOURCE_EXHAUSTED');
    const withStreams = await clients();
    console.log(`# abuse-api redis clients: ${idle} idle, ${withStreams} with 5 live streams`);
    assert.ok(withStreams - idle <= 1, `5 streams share one reader (${idle} → ${withStreams})`);
    // Closing one frees a slot.
    open.shift()!.abort();
    let again: Response | undefined;
    for (let i = 0; i < 50 && (again?.status ?? 429) === 429; i++) {
      await new Promise((r) => setTimeout(r, 100));
      again = await stream(a);
    }
    assert.equal(again?.status, 200);
    for (const c of open) c.abort();
    assert.ok((await request(server).post(`/v1/jobs/${id}/cancel`).set(a)).status < 300);
  });

  it('wakes a stream the shared reader starts following while it is blocked on others, without waiting out the block', async () => {
    // A 30 s block: a stream left to wait it out shows at ~30 s, far from the 10 s bound
    // below, which leaves a loaded machine ~5 000x the typical 2 ms.
    const hub = new EventStreamHub(redis, 30_000);
    try {
      const ids = Array.from({ length: 20 }, (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`);
      const watches = ids.slice(0, 19).map((id) => hub.watch(id, undefined));
      await new Promise((r) => setTimeout(r, 300)); // the reader is now blocked on 19 streams
      const late = hub.watch(ids[19]!, undefined);
      await new Promise((r) => setTimeout(r, 100));
      const start = performance.now();
      const woken = late.wait(10_000);
      await redis.xadd(`stv:job:${ids[19]}:events`, '*', 'type', 'log', 'data', '{}');
      assert.equal(await woken, true);
      const ms = performance.now() - start;
      console.log(`# abuse-api shared reader: 20 streams, a newly followed one woken ${ms.toFixed(1)} ms after its event (block 30000 ms)`);
      assert.ok(ms < 10_000, `${ms} ms`);
      for (const w of [...watches, late]) w.close();
      assert.equal(hub.followed, 0);
      await redis.del(`stv:job:${ids[19]}:events`);
    } finally {
      hub.onApplicationShutdown(); // its reader would keep the test process alive
    }
  });

  it('masks a tenant secret a RUN step prints, in events, the record and all of Redis', async () => {
    const a = bearer(keys['team-a']!);
    const secret = plantable('stv-abuse-secret');
    await request(server).put('/v1/secrets/abuse_token').set(a).send({ value: secret }).expect(201);
    const run = 'RUN --mount=type=secret,id=abuse_token,required=true';
    const ok = (
      await request(server)
        .post('/v1/jobs')
        .set(a)
        .send({
          action: 'build',
          no_cache: true,
          secrets: ['abuse_token'],
          dockerfile_inline:
            `FROM debian:bookworm-slim\n${run} echo "once $(cat /run/secrets/abuse_token)" && ` +
            `echo "twice $(cat /run/secrets/abuse_token)$(cat /run/secrets/abuse_token) end"\n`,
        })
        .expect(202)
    ).body.id;
    const failing = (
      await request(server)
        .post('/v1/jobs')
        .set(a)
        .send({
          action: 'build',
          no_cache: true,
          secrets: ['abuse_token'],
          dockerfile_inline: `FROM debian:bookworm-slim\n${run} echo "leak $(cat /run/secrets/abuse_token)" >&2 && exit 3\n`,
        })
        .expect(202)
    ).body.id;
    const done = async (jobId: string) => {
      for (const deadline = Date.now() + 240_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
        const job = (await request(server).get(`/v1/jobs/${jobId}`).set(a).expect(200)).body;
        if (!['queued', 'running'].includes(job.state)) return job;
      }
      throw new Error(`job ${jobId} did not finish`);
    };
    const [okJob, failedJob] = [await done(ok), await done(failing)];
    assert.equal(okJob.state, 'succeeded', JSON.stringify(okJob.error));
    assert.equal(failedJob.state, 'failed');
    const events = async (jobId: string) =>
      JSON.stringify((await request(server).get(`/v1/jobs/${jobId}/events?follow=false`).set(a).expect(200)).body.items);
    const [okEvents, failedEvents] = [await events(ok), await events(failing)];
    assert.match(okEvents, /once \*\*\*/, 'the printed line is there, masked');
    assert.match(okEvents, /twice \*\*\*\*\*\* end/, 'twice on one line: both masked');
    assert.match(failedEvents + JSON.stringify(failedJob.error), /leak \*\*\*/);
    const everything = okEvents + failedEvents + JSON.stringify([okJob, failedJob]) + JSON.stringify(await dumpRedis(redis));
    assert.deepEqual(findPlanted(everything, { 'tenant secret': secret }), [], 'the secret is nowhere');
  });
});
