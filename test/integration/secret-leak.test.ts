import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import type { StartedTestContainer } from 'testcontainers';
import { runProcess } from '../../src/engines/process-runner.js';
import { startAppProcess, type AppProcess } from '../support/app-process.js';
import { startAuthRegistry } from '../support/auth-registry.js';
import { CACHE_DIR, TEST_REDIS_PASSWORD, TOOLS, testRedisUrl } from '../support/env.js';
import { findPlanted, plantable } from '../support/leak-search.js';
import { dumpRedis } from '../support/redis-dump.js';
import { startBuildkitd, startRedis, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { freePort } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');
const REGISTRY_USER = 'stv-leak-user';

/**
 * Every kind of credential the service handles, planted with unique values and used
 * by real jobs in real `stevedore api` and `stevedore worker` processes; then every
 * Redis key, everything both processes printed, and every job record, event and
 * artifact list is searched for them (plain, base64, base64url, hex).
 */
describe('no credential leaks into Redis, logs, events, results or errors', () => {
  const planted: Record<string, string> = {
    'tenant build secret': plantable('tenant-secret'),
    'server build secret': plantable('server-secret'),
    'cosign key password': plantable('cosign-password'),
    'registry password': plantable('registry-password'),
    'admin token': plantable('admin-token'),
    'secrets-at-rest key': randomBytes(32).toString('base64'),
    // In REDIS_URL of both processes: never to be printed.
    'redis password': TEST_REDIS_PASSWORD,
  };
  // Positive control: sent where it is meant to be stored and logged, so the searches
  // below are shown to look where the data really is.
  const CANARY = plantable('canary');
  let redis: StartedTestContainer;
  let open: StartedRegistry;
  let locked: StartedRegistry;
  let buildkitd: StartedBuildkitd;
  let processes: AppProcess[] = [];
  let base: string;
  const jobs: { id: string; auth: Record<string, string> }[] = [];
  const admin = () => ({ authorization: `Bearer ${planted['admin token']}` });
  let tenant: Record<string, string>;

  const submit = async (body: object, expected: 'succeeded' | 'failed' = 'succeeded', headers: Record<string, string> = {}) => {
    const res = await request(base).post('/v1/jobs').set(tenant).set(headers).send(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    jobs.push({ id: res.body.id, auth: tenant });
    const deadline = Date.now() + 240_000;
    for (;;) {
      const job = (await request(base).get(`/v1/jobs/${res.body.id}`).set(tenant).expect(200)).body;
      if (!['queued', 'running'].includes(job.state)) {
        assert.equal(job.state, expected, `${JSON.stringify(body).slice(0, 200)}: ${JSON.stringify(job.error)}`);
        return job;
      }
      if (Date.now() > deadline) throw new Error(`job ${job.id} still ${job.state}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };

  before(async () => {
    [redis, open, locked] = await Promise.all([
      startRedis(),
      startSeededRegistry(),
      startAuthRegistry(REGISTRY_USER, planted['registry password']!),
    ]);
    buildkitd = await startBuildkitd(open.address);
    const dir = tempDir('stv-leak-');
    // Server-side credentials, as an operator configures them.
    const auth = Buffer.from(`${REGISTRY_USER}:${planted['registry password']}`).toString('base64');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [locked.address]: { auth } } }));
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(dir, 'release')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: planted['cosign key password'] },
    });
    writeFileSync(
      join(dir, 'keys.json'),
      JSON.stringify({
        default: 'release',
        keys: [{ name: 'release', key: join(dir, 'release.key'), password_env: 'STV_LEAK_COSIGN_PASSWORD' }],
      }),
    );
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      STEVEDORE_CACHE_DIR: CACHE_DIR,
      STEVEDORE_STATE_DIR: dir,
      STEVEDORE_HTTP_HOST: '127.0.0.1',
      STEVEDORE_HTTP_PORT: String(port),
      STEVEDORE_GRPC_PORT: String(await freePort()),
      REDIS_URL: testRedisUrl(redis.getMappedPort(6379)),
      BUILDKIT_HOST: buildkitd.address,
      STEVEDORE_REGISTRY_MIRROR: open.address,
      // The second loopback registry is one the operator names (issue 14).
      STEVEDORE_REGISTRY_ALLOWED_HOSTS: locked.address,
      STEVEDORE_TOKEN: planted['admin token'],
      STEVEDORE_SECRETS_KEY: planted['secrets-at-rest key'],
      STEVEDORE_REGISTRY_AUTH_FILE: join(dir, 'config.json'),
      STEVEDORE_SIGNING_KEYS_FILE: join(dir, 'keys.json'),
      STEVEDORE_BUILD_SECRETS: 'server_token=env:STV_LEAK_SERVER_SECRET',
      STV_LEAK_SERVER_SECRET: planted['server build secret'],
      STV_LEAK_COSIGN_PASSWORD: planted['cosign key password'],
      // As chatty as it gets short of trace: more lines that could leak.
      STEVEDORE_LOG_LEVEL: 'debug',
    };
    processes = [startAppProcess('api', env), startAppProcess('worker', env)];
    await Promise.all([processes[0]!.waitForOutput(/stevedore api ready/), processes[1]!.waitForOutput(/workers ready/)]);

    const key = (
      await request(base)
        .post('/v1/api-keys')
        .set(admin())
        .send({
          tenant: 'leak-team',
          scopes: ['jobs:read', 'jobs:write', 'secrets:write'],
          repositories: [`${open.address}/leak/**`, `${locked.address}/leak/**`],
        })
        .expect(201)
    ).body.key as string;
    planted['tenant API key'] = key;
    tenant = { authorization: `Bearer ${key}` };
  });

  after(async () => {
    for (const p of processes) await p.stop();
    await buildkitd?.stop();
    await Promise.all([redis?.stop(), open?.container.stop(), locked?.container.stop()]);
  });

  it('runs jobs that use every planted credential', async () => {
    assert.equal((await fetch(`http://${locked.address}/v2/`)).status, 401, 'the locked registry refuses anonymous access');
    await request(base).put('/v1/secrets/leak_token').set(tenant).send({ value: planted['tenant build secret'] }).expect(201);
    // The RUN step compares hashes, so the Dockerfile (stored with the job) holds no value.
    const checks = (tenantHash: string) =>
      `FROM debian:bookworm-slim\nRUN --mount=type=secret,id=leak_token,required=true --mount=type=secret,id=server_token,required=true ` +
      `test "$(sha256sum < /run/secrets/leak_token | cut -c1-64)" = "${tenantHash}" && test "$(sha256sum < ` +
      `/run/secrets/server_token | cut -c1-64)" = "${sha256(planted['server build secret']!)}" && echo secrets-arrived\n`;
    const image = `${open.address}/leak/app:1`;
    const copy = `${locked.address}/leak/app:1`;
    // Build + sign (cosign password) + copy into the locked registry (registry credential).
    const built = await submit({
      action: 'build',
      dockerfile_inline: checks(sha256(planted['tenant build secret']!)),
      secrets: ['leak_token', 'server_token'],
      tags: [image],
      sign: true,
      push_to: [copy],
      build_args: { MARKER: CANARY },
      no_cache: true,
    });
    assert.ok(
      built.result.stages.every((s: { state: string }) => s.state === 'succeeded'),
      JSON.stringify(built.result.stages),
    );
    await submit(
      { action: 'build', dockerfile_inline: checks(sha256('not the value')), secrets: ['leak_token', 'server_token'], no_cache: true },
      'failed',
    );
    await submit({ action: 'push', image, destinations: [`${locked.address}/leak/pushed:1`] }, 'succeeded', { 'x-request-id': CANARY });
    await submit({ action: 'sign', image: copy });
    const verified = await submit({ action: 'verify', image: copy });
    assert.equal(verified.result.verification.verified, true, JSON.stringify(verified.result.verification));
    await submit({ action: 'inspect', image: `${locked.address}/leak/pushed:1` });
    await submit({ action: 'inspect', image: `${locked.address}/leak/missing:1` }, 'failed');
    await submit({ action: 'sign', image: `${locked.address}/leak/missing:1` }, 'failed');
    // A wrong key is logged as a failed request: the key must not be.
    await request(base)
      .get('/v1/jobs')
      .set({ authorization: `Bearer ${planted['tenant API key']}x` })
      .expect(401);
  });

  it('leaves no planted value in any Redis key of any type', async () => {
    const client = new Redis(testRedisUrl(redis.getMappedPort(6379)));
    try {
      const dump = JSON.stringify(await dumpRedis(client));
      assert.ok(dump.includes(CANARY), 'control: the canary build arg is in Redis, so the dump reads job data');
      assert.ok(dump.includes('stv:secret:leak-team:leak_token'), 'control: the dump covers the secret store');
      assert.deepEqual(findPlanted(dump, planted), [], 'planted values found in Redis');
    } finally {
      client.disconnect();
    }
  });

  it('shows no planted value in job records, results, errors, events or artifact lists', async () => {
    let seen = '';
    for (const auth of [tenant, admin()])
      seen += JSON.stringify((await request(base).get('/v1/jobs?limit=100').set(auth).expect(200)).body);
    for (const { id, auth } of jobs) {
      for (const path of ['', '/events?follow=false', '/artifacts'])
        seen += (await request(base).get(`/v1/jobs/${id}${path}`).set(auth).expect(200)).text;
    }
    seen +=
      (await request(base).get('/v1/secrets').set(tenant).expect(200)).text +
      (await request(base).get('/v1/api-keys').set(admin()).expect(200)).text;
    assert.ok(seen.includes(CANARY), 'control: the canary build arg is in the job record');
    assert.ok(seen.includes('secrets-arrived'), 'control: the build log is in the events');
    assert.ok(seen.includes('BUILD_FAILED') && seen.includes('IMAGE_NOT_FOUND'), 'control: the failures are there');
    assert.deepEqual(findPlanted(seen, planted), [], 'planted values in what the API shows');
  });

  it('prints no planted value in the api or worker output, shutdown included', async () => {
    // Stopped first: pino has flushed everything and the shutdown lines are in too.
    for (const p of processes) await p.stop();
    for (const p of processes) {
      const output = p.output().toString('utf8');
      // Controls: the api logged the job submitted with the canary request id, the worker ran the build.
      if (p.role === 'api') assert.ok(output.includes(CANARY), 'control: the canary request id is in the api output');
      else assert.ok(output.includes(jobs[0]!.id), 'control: the build job is in the worker output');
      const found = findPlanted(output, planted);
      const lines = output
        .split('\n')
        .filter((line) => findPlanted(line, planted).length)
        .slice(0, 3);
      assert.deepEqual(found, [], `planted values in the ${p.role} output, e.g.:\n${lines.join('\n')}`);
    }
  });
});
