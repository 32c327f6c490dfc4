import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status as grpcStatus } from '@grpc/grpc-js';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { StartedTestContainer } from 'testcontainers';
import request from 'supertest';
import { startApp, stopApp } from '../../src/bootstrap.js';
import { testConfig, testRedisUrl } from '../support/env.js';
import { grpcHealthCheck, grpcReflectionServices, grpcSystemInfo } from '../support/grpc-health.js';
import { startBuildkitd, startRedis, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { freePort } from '../support/stack.js';

const TOKEN = 'test-admin-token-0123456789';

async function readyz(base: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${base}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function eventually<T>(probe: () => Promise<T>, accept: (v: T) => boolean, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T = await probe();
  while (!accept(last) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    last = await probe();
  }
  return last;
}

describe('the service against real Redis, BuildKit and registry', () => {
  let registry: StartedRegistry;
  let buildkitd: StartedBuildkitd;
  let redis: StartedTestContainer;
  let redisPort: number;
  let app: NestFastifyApplication;
  let base: string;
  let grpcAddress: string;

  before(async () => {
    registry = await startSeededRegistry();
    buildkitd = await startBuildkitd(registry.address);
    redisPort = await freePort();
    redis = await startRedis(redisPort);
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    app = await startApp(
      testConfig({
        http: { host: '127.0.0.1', port: httpPort },
        grpc: { port: grpcPort },
        redisUrl: testRedisUrl(redisPort),
        buildkitHost: buildkitd.address,
        registryMirror: registry.address,
      }),
      { api: true, worker: false },
    );
    base = `http://127.0.0.1:${httpPort}`;
    grpcAddress = `127.0.0.1:${grpcPort}`;
  });
  after(async () => {
    if (app) await stopApp(app);
    await redis?.stop().catch(() => undefined);
    await buildkitd?.stop();
    await registry?.container.stop();
  });

  it('is ready when Redis, BuildKit and the registry answer', async () => {
    const { status, body } = await readyz(base);
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(Object.keys(body.info).sort(), ['buildkit', 'event_loop', 'redis', 'registry']);
  });

  it('answers 503 naming redis while Redis is down, and 200 once it is back', async () => {
    await redis.stop();
    const down = await eventually(
      () => readyz(base),
      (r) => r.status === 503,
    );
    assert.equal(down.status, 503);
    assert.equal(down.body.error.code, 'NOT_READY');
    assert.match(down.body.error.message, /redis/);
    assert.equal(down.body.error.details.error.redis.status, 'down');
    assert.equal(down.body.error.details.info.buildkit.status, 'up', 'only the failing part is named down');

    redis = await startRedis(redisPort);
    const up = await eventually(
      () => readyz(base),
      (r) => r.status === 200,
    );
    assert.equal(up.status, 200, JSON.stringify(up.body));
  });

  it('serves the gRPC health check as SERVING, and the system service with the admin token', async () => {
    assert.equal(await grpcHealthCheck(grpcAddress), 'SERVING');
    assert.equal(await grpcHealthCheck(grpcAddress, 'stevedore.v1.SystemService'), 'SERVING');
    const listed = await grpcReflectionServices(grpcAddress);
    for (const name of ['grpc.health.v1.Health', 'stevedore.v1.SystemService'])
      assert.ok(listed.includes(name), `reflection lists ${name}: ${listed.join(',')}`);
    const info = await grpcSystemInfo(grpcAddress, TOKEN);
    assert.equal(info.tools.buildctl, 'v0.32.2');
    await assert.rejects(grpcSystemInfo(grpcAddress), (err: { code: grpcStatus }) => err.code === grpcStatus.UNAUTHENTICATED);
    await assert.rejects(
      grpcSystemInfo(grpcAddress, 'wrong-token-0123456789'),
      (err: { code: grpcStatus }) => err.code === grpcStatus.UNAUTHENTICATED,
    );
  });

  it('answers REST errors in the one error shape', async () => {
    const server = app.getHttpServer();
    const missing = await request(server).get('/v1/system').expect(401);
    assert.deepEqual(Object.keys(missing.body.error).sort(), ['code', 'details', 'message']);
    assert.equal(missing.body.error.code, 'UNAUTHORIZED');
    const wrong = await request(server).get('/v1/system').set('authorization', 'Bearer not-the-token-0123456789').expect(401);
    assert.equal(wrong.body.error.message, 'invalid token');
    const unknown = await request(server).get('/v1/nope').set('authorization', `Bearer ${TOKEN}`).expect(404);
    assert.equal(unknown.body.error.code, 'NOT_FOUND');
    const badJson = await request(server)
      .post('/v1/system')
      .set('content-type', 'application/json')
      .send('{"broken":')
      .expect((r) => assert.ok(r.status >= 400 && r.status < 500, `got ${r.status}`));
    assert.ok(badJson.body.error.code, 'a 4xx in the error shape, not a stack trace');
    const ok = await request(server).get('/v1/system').set('authorization', `Bearer ${TOKEN}`).expect(200);
    assert.equal(ok.body.tools.cosign, 'v3.1.2');
    const docs = await request(server).get('/openapi.json').expect(200);
    assert.equal(docs.body.info.title, 'stevedore');
    await request(server).get('/docs').expect(200);
  });
});
