import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { startApp, stopApp } from '../../src/bootstrap.js';
import { testConfig } from '../support/env.js';
import { RedisServer, until } from '../support/processes.js';
import { startBuildkitd, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { AUTH, freePort } from '../support/stack.js';

const OUTAGE_MS = 8_000;
const REQUEST_LIMIT_MS = 3_000;

/**
 * Redis (a real redis-server with an append-only file, fsync always) is killed while the
 * all-in-one service has builds running and queued: the API must answer 503
 * REDIS_UNAVAILABLE at once (never 500, never hang), and every job accepted before the
 * outage must still succeed once Redis is back on the same port and data.
 */
describe('Redis outage under load', () => {
  let redis: RedisServer;
  let registry: StartedRegistry;
  let buildkitd: StartedBuildkitd;
  let app: NestFastifyApplication;
  let base: string;

  before(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    registry = await startSeededRegistry();
    buildkitd = await startBuildkitd(registry.address);
    const [http, grpc] = [await freePort(), await freePort()];
    app = await startApp(
      testConfig({
        http: { host: '127.0.0.1', port: http },
        grpc: { port: grpc },
        redisUrl: redis.url,
        buildkitHost: buildkitd.address,
        registryMirror: registry.address,
        concurrency: { build: 1 },
        jobLockMs: 5_000,
      }),
      { api: true, worker: true },
    );
    base = `http://127.0.0.1:${http}`;
  });
  after(async () => {
    if (app) await Promise.race([stopApp(app), new Promise((r) => setTimeout(r, 10_000))]);
    await redis?.kill();
    await buildkitd?.stop();
    await registry?.container.stop();
  });

  const call = async (method: string, path: string, body?: object) => {
    const started = Date.now();
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...AUTH, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(REQUEST_LIMIT_MS),
    });
    return { status: res.status, body: (await res.json().catch(() => ({}))) as any, ms: Date.now() - started };
  };

  it('answers 503 REDIS_UNAVAILABLE during the outage and completes every job accepted before it', async () => {
    const run = Date.now();
    const accepted: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', '/v1/jobs', {
        action: 'build',
        dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep 2 && echo outage-${run}-${i}\n`,
        no_cache: true,
      });
      assert.equal(res.status, 202);
      accepted.push(res.body.id);
      const inspect = await call('POST', '/v1/jobs', { action: 'inspect', image: `${registry.address}/library/debian:bookworm-slim` });
      assert.equal(inspect.status, 202);
      accepted.push(inspect.body.id);
    }
    await until('the first build to run', async () => (await call('GET', `/v1/jobs/${accepted[0]}`)).body.state === 'running');

    await redis.kill();
    const outageStarted = Date.now();
    const answers: { status: number; code?: string; ms: number }[] = [];
    while (Date.now() - outageStarted < OUTAGE_MS) {
      for (const [method, path, body] of [
        ['POST', '/v1/jobs', { action: 'inspect', image: 'debian:bookworm-slim' }],
        ['GET', `/v1/jobs/${accepted[3]}`],
        ['GET', '/v1/jobs?limit=5'],
        ['GET', `/v1/jobs/${accepted[1]}/events?follow=false`],
      ] as const) {
        const res = await call(method, path, body);
        answers.push({ status: res.status, code: res.body?.error?.code, ms: res.ms });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    await redis.start();
    const outageMs = Date.now() - outageStarted;

    assert.ok(answers.length >= 20, `${answers.length} requests during the outage`);
    const wrong = answers.filter((a) => a.status !== 503 || a.code !== 'REDIS_UNAVAILABLE');
    assert.deepEqual(wrong, [], 'every answer during the outage is 503 REDIS_UNAVAILABLE');
    const slowest = Math.max(...answers.map((a) => a.ms));

    const finals = await until(
      'every accepted job to finish',
      async () => {
        const jobs = await Promise.all(accepted.map(async (id) => (await call('GET', `/v1/jobs/${id}`)).body));
        return jobs.every((j) => ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(j.state)) ? jobs : undefined;
      },
      180_000,
      500,
    );
    const succeeded = finals.filter((j) => j.state === 'succeeded').length;
    console.log(
      `outage: ${(outageMs / 1000).toFixed(1)} s of Redis down, ${answers.length} requests all 503 REDIS_UNAVAILABLE ` +
        `(slowest ${slowest} ms), ${accepted.length} jobs accepted before, ${succeeded} succeeded after`,
    );
    assert.deepEqual(
      finals.filter((j) => j.state !== 'succeeded').map((j) => ({ id: j.id, state: j.state, error: j.error })),
      [],
    );
    // And the service takes new work again.
    const after = await call('POST', '/v1/jobs', { action: 'inspect', image: `${registry.address}/library/debian:bookworm-slim` });
    assert.equal(after.status, 202);
  });
});
