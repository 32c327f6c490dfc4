import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { pushTwoPlatformImage } from '../support/images.js';
import { readSse } from '../support/sse.js';
import { AUTH, blackhole, startStack, type Stack } from '../support/stack.js';

describe('jobs over REST with real Redis, registry and workers', () => {
  let stack: Stack;
  let server: any;
  let hang: { address: string; close(): void };
  const submit = (body: object, headers: Record<string, string> = {}) => request(server).post('/v1/jobs').set(AUTH).set(headers).send(body);
  const waitFor = async (id: string, states: string[], timeoutMs = 20_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = (await request(server).get(`/v1/jobs/${id}`).set(AUTH).expect(200)).body;
      if (states.includes(job.state) || Date.now() > deadline) return job;
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    hang = await blackhole();
    // Loopback registries other than the mirror must be configured (issue 14): the hanging
    // one and a closed port stand for registries the operator named.
    stack = await startStack({
      buildkit: true,
      overrides: { concurrency: { inspect: 1 }, registryAllowedHosts: [hang.address, '127.0.0.1:1'] },
    });
    server = stack.app.getHttpServer();
    await pushTwoPlatformImage(stack.buildkitd!.address, `${stack.registry.address}/multi/app:1`);
  });
  after(async () => {
    hang?.close();
    await stack?.stop();
  });

  it('runs an inspect job and streams its events over SSE until the terminal one', async () => {
    const res = await submit({ action: 'inspect', image: 'debian:bookworm-slim' }).expect(202);
    assert.deepEqual(Object.keys(res.body).sort(), ['action', 'id', 'links', 'state']);
    assert.equal(res.body.links.events, `/v1/jobs/${res.body.id}/events`);
    const sse = await readSse(`${stack.base}/v1/jobs/${res.body.id}/events`, AUTH);
    assert.equal(sse.status, 200);
    assert.match(sse.contentType ?? '', /^text\/event-stream/);
    const states = sse.events.filter((e) => e.event === 'state').map((e) => e.data.state);
    assert.deepEqual(states, ['queued', 'running', 'succeeded']);
    assert.ok(sse.events.some((e) => e.event === 'progress'));
    const ids = sse.events.map((e) => e.id!);
    assert.deepEqual([...ids].sort(compareIds), ids, 'ids increase');
    assert.equal(new Set(ids).size, ids.length);

    const job = (await request(server).get(`/v1/jobs/${res.body.id}`).set(AUTH).expect(200)).body;
    assert.equal(job.state, 'succeeded');
    assert.deepEqual(job.result.vulnerabilities, []);
    assert.deepEqual(job.result.optimization_suggestions, []);
    const registryDigest = await new RegistryClient(stack.registry.address).manifestDigest('library/debian', 'bookworm-slim');
    assert.equal(job.result.image_info.digest, registryDigest);
    assert.equal(job.result.image_info.os, 'linux');
    assert.ok(job.started_at && job.finished_at && job.attempts === 1);
  });

  it('resumes the stream after Last-Event-ID and answers the log as JSON with follow=false', async () => {
    const { body } = await submit({ action: 'inspect', image: `${stack.registry.address}/library/debian:bookworm-slim` }).expect(202);
    const all = await readSse(`${stack.base}/v1/jobs/${body.id}/events`, AUTH);
    const resumed = await readSse(`${stack.base}/v1/jobs/${body.id}/events`, { ...AUTH, 'last-event-id': all.events[1]!.id! });
    assert.deepEqual(
      resumed.events.map((e) => e.id),
      all.events.slice(2).map((e) => e.id),
    );
    const json = (await request(server).get(`/v1/jobs/${body.id}/events?follow=false`).set(AUTH).expect(200)).body;
    assert.deepEqual(
      json.items.map((e: { id: string }) => e.id),
      all.events.map((e) => e.id),
    );
  });

  it('inspects a two-platform index: index digest, platform list, platform selection', async () => {
    const ref = `${stack.registry.address}/multi/app:1`;
    const indexDigest = await new RegistryClient(stack.registry.address).manifestDigest('multi/app', '1');
    const { body } = await submit({ action: 'inspect', image: ref, platform: 'linux/arm64' }).expect(202);
    const job = await waitFor(body.id, ['succeeded', 'failed']);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const info = job.result.image_info;
    assert.equal(info.digest, indexDigest);
    assert.notEqual(info.manifest_digest, indexDigest);
    assert.deepEqual([...info.platforms].sort(), ['linux/amd64', 'linux/arm64']);
    assert.equal(info.architecture, 'arm64');
    assert.equal(info.config.env.API_TOKEN, '[redacted]', 'secret-looking env values are hidden');
    assert.equal(info.config.env.GREETING, 'hi');
    assert.equal(info.config.labels['org.opencontainers.image.title'], 'multi');
    assert.equal(info.layers.length, 1);
    assert.match(info.layers[0].created_by, /COPY hello.txt/);

    const sync = (await request(server).get('/v1/images/inspect').query({ ref, platform: 'linux/amd64' }).set(AUTH).expect(200)).body;
    assert.equal(sync.digest, indexDigest);
    assert.equal(sync.architecture, 'amd64');
    const again = (await request(server).get('/v1/images/inspect').query({ ref, platform: 'linux/amd64' }).set(AUTH).expect(200)).body;
    assert.deepEqual(again, sync, 'cached answer is the same');
    const missing = await request(server).get('/v1/images/inspect').query({ ref, platform: 'linux/s390x' }).set(AUTH).expect(404);
    assert.equal(missing.body.error.code, 'PLATFORM_NOT_FOUND');
  });

  it("takes the seed's registry beside an image without one, and checks the joined reference", async () => {
    const registry = stack.registry.address;
    const { body } = await submit({ action: 'inspect', image: 'multi/app:1', registry, platform: 'linux/arm64' }).expect(202);
    const job = await waitFor(body.id, ['succeeded', 'failed']);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual(job.request, { action: 'inspect', image: `${registry}/multi/app:1`, platform: 'linux/arm64' }, 'stored in full');
    assert.equal(job.result.image_info.digest, await new RegistryClient(registry).manifestDigest('multi/app', '1'));
    assert.equal(job.result.image_info.architecture, 'arm64');
    // The registry guard sees the joined reference: an internal address is still refused.
    for (const action of ['inspect', 'scan', 'sign', 'verify']) {
      const forbidden = await submit({ action, image: 'x/y:1', registry: '169.254.169.254' }).expect(400);
      assert.equal(forbidden.body.error.code, 'REGISTRY_FORBIDDEN', action);
      assert.equal(forbidden.body.error.details.reference, '169.254.169.254/x/y:1');
    }
    // An image naming another registry than `registry`: which one is said.
    const conflict = await submit({ action: 'verify', image: `${registry}/multi/app:1`, registry: 'registry.example:5000' }).expect(400);
    assert.equal(conflict.body.error.code, 'VALIDATION_FAILED');
    assert.equal(conflict.body.error.details.fields[0].path, 'registry');
    assert.ok(conflict.body.error.message.includes(registry) && conflict.body.error.message.includes('registry.example:5000'));
  });

  it('fails a job on a missing image or an unreachable registry with a clear code', async () => {
    const notFound = await waitFor(
      (await submit({ action: 'inspect', image: `${stack.registry.address}/nope/nothing:1` }).expect(202)).body.id,
      ['failed', 'succeeded'],
    );
    assert.equal(notFound.state, 'failed');
    assert.equal(notFound.error.code, 'IMAGE_NOT_FOUND');
    assert.equal(notFound.attempts, 1, 'a missing image is not retried');
    const unreachable = await waitFor(
      (await submit({ action: 'inspect', image: '127.0.0.1:1/some/image:1' }).expect(202)).body.id,
      ['failed', 'succeeded'],
      30_000,
    );
    assert.equal(unreachable.error.code, 'REGISTRY_UNAVAILABLE');
    assert.equal(unreachable.attempts, 3, 'BullMQ retried it');
  });

  it('times a job out', async () => {
    const { body } = await submit({ action: 'inspect', image: `${hang.address}/slow/image:1`, timeout_seconds: 1 }).expect(202);
    const job = await waitFor(body.id, ['timed_out', 'failed', 'succeeded'], 60_000); // ~6 s typical
    assert.equal(job.state, 'timed_out');
    assert.equal(job.error.code, 'TIMED_OUT');
  });

  it('cancels a queued job at once and a running job by aborting it', async () => {
    const running = (await submit({ action: 'inspect', image: `${hang.address}/slow/image:2` }).expect(202)).body;
    await waitFor(running.id, ['running']);
    const queued = (await submit({ action: 'inspect', image: 'debian:bookworm-slim' }).expect(202)).body;
    const q = (await request(server).post(`/v1/jobs/${queued.id}/cancel`).set(AUTH).expect(202)).body;
    assert.equal(q.state, 'cancelled', 'concurrency 1: the second job was still queued');
    await request(server).post(`/v1/jobs/${running.id}/cancel`).set(AUTH).expect(202);
    const r = await waitFor(running.id, ['cancelled', 'failed', 'succeeded', 'timed_out'], 60_000);
    assert.equal(r.state, 'cancelled');
    assert.equal(r.error.code, 'CANCELLED');
    const again = await request(server).post(`/v1/jobs/${running.id}/cancel`).set(AUTH).expect(409);
    assert.equal(again.body.error.code, 'JOB_FINISHED');
  });

  it('honours Idempotency-Key: same body returns the original job, another body is a conflict', async () => {
    const body = { action: 'inspect', image: 'debian:bookworm-slim' };
    const first = await submit(body, { 'idempotency-key': 'deploy-42' }).expect(202);
    const second = await submit({ image: 'debian:bookworm-slim', action: 'inspect' }, { 'idempotency-key': 'deploy-42' }).expect(200);
    assert.equal(second.body.id, first.body.id);
    const conflict = await submit({ ...body, platform: 'linux/arm64' }, { 'idempotency-key': 'deploy-42' }).expect(409);
    assert.equal(conflict.body.error.code, 'IDEMPOTENCY_CONFLICT');
    assert.equal(conflict.body.error.details.job_id, first.body.id);
  });

  it('lists jobs newest first with cursor pagination and filters', async () => {
    const made: string[] = [];
    for (let i = 0; i < 5; i++) made.push((await submit({ action: 'inspect', image: 'debian:bookworm-slim' }).expect(202)).body.id);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (
        await request(server)
          .get('/v1/jobs')
          .query({ limit: 2, ...(cursor ? { cursor } : {}) })
          .set(AUTH)
          .expect(200)
      ).body;
      assert.ok(page.items.length <= 2);
      seen.push(...page.items.map((j: { id: string }) => j.id));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    assert.deepEqual(seen.slice(0, 5), [...made].reverse(), 'newest first');
    assert.equal(new Set(seen).size, seen.length, 'no job twice across pages');
    const cancelled = (await request(server).get('/v1/jobs').query({ state: 'cancelled', action: 'inspect' }).set(AUTH).expect(200)).body;
    assert.ok(cancelled.items.length >= 2 && cancelled.items.every((j: { state: string }) => j.state === 'cancelled'));
  });
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : Number(am - bm);
}
