import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Redis } from 'ioredis';
import { startApp, stopApp } from '../../src/bootstrap.js';
import { JobStore, keys } from '../../src/jobs/job-store.js';
import type { JobRecord } from '../../src/jobs/job-types.js';
import { QUEUE_PREFIX, queueName } from '../../src/jobs/queues.js';
import { ADMIN_TENANT } from '../../src/auth/principal.js';
import { testConfig } from '../support/env.js';
import { api, eventsOf, jobOf, roleEnv, spawnRole, waitTerminal, waitUntil, type GroupProcess } from '../support/fault-helpers.js';
import { RedisServer } from '../support/processes.js';
import { RedisCutProxy } from '../support/redis-cut-proxy.js';
import { startBuildkitd, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { freePort } from '../support/stack.js';
import { Receiver } from '../support/webhook-receiver.js';
import { tempDir } from '../support/temp-dir.js';

/** Short on purpose: the reconciler's bound and period (defaults 120 s and 30 s). */
const AFTER_MS = 3_000;
const INTERVAL_MS = 500;

/** The job-create script: an EVAL/EVALSHA whose keys include a fair-scheduling hash (job-store.ts, CREATE_LUA). */
const isCreate = (args: string[]) => /^eval(sha)?$/i.test(args[0] ?? '') && args.some((a) => a.startsWith('stv:fair:'));

/**
 * No record left behind. A `stevedore api` process reaches Redis through a proxy that cuts
 * every connection right after the job-create script's reply has gone back (so its queue
 * add can never reach Redis), and is SIGKILLed while Redis is unreachable (so its own
 * in-process clean-up cannot save the record); Redis itself is then killed and restarted on
 * its data. The record is `queued` with no BullMQ job: the reconciler of the worker role
 * (here the in-process `serve`, with a 3 s bound) must fail it with QUEUE_UNAVAILABLE,
 * announce it (webhook), and leave a healthy long-running job alone.
 */
describe('reconciler: no record left behind', () => {
  let redis: RedisServer;
  let direct: Redis;
  let registry: StartedRegistry;
  let buildkitd: StartedBuildkitd;
  let receiver: Receiver;
  let app: NestFastifyApplication;
  let base: string;
  let image: string;
  const children: GroupProcess[] = [];
  let proxy: RedisCutProxy | undefined;

  before(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    direct = new Redis(redis.url, { maxRetriesPerRequest: null });
    direct.on('error', () => undefined);
    receiver = new Receiver(await freePort(), '/hooks/reconcile');
    await receiver.up();
    registry = await startSeededRegistry();
    buildkitd = await startBuildkitd(registry.address);
    image = `${registry.address}/library/debian:bookworm-slim`;
    const [http, grpc] = [await freePort(), await freePort()];
    app = await startApp(
      testConfig({
        http: { host: '127.0.0.1', port: http },
        grpc: { port: grpc },
        redisUrl: redis.url,
        buildkitHost: buildkitd.address,
        registryMirror: registry.address,
        concurrency: { build: 1 },
        jobLockMs: 4_000,
        reconcile: { intervalMs: INTERVAL_MS, afterMs: AFTER_MS },
        webhooks: { allowedHosts: ['127.0.0.1'], attempts: 3, retryBaseMs: 300, timeoutMs: 2_000 },
      }),
      { api: true, worker: true },
    );
    base = `http://127.0.0.1:${http}`;
  });
  after(async () => {
    for (const child of children) await child.kill().catch(() => undefined);
    await proxy?.close();
    if (app) await Promise.race([stopApp(app), new Promise((r) => setTimeout(r, 10_000))]);
    direct?.disconnect();
    await redis?.kill();
    await receiver?.down();
    await buildkitd?.stop();
    await registry?.container.stop();
  });

  const reconciled = async () => {
    const text = (await api(base, 'GET', '/metrics')).body as string;
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^stevedore_jobs_reconciled_total\{reason="(\w+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  };

  it('fails a record whose submit died between its record write and its queue add, with QUEUE_UNAVAILABLE', async () => {
    proxy = new RedisCutProxy(redis.port);
    await proxy.listen();
    const port = await freePort();
    const child = spawnRole(
      'api-behind-proxy',
      'api',
      roleEnv({
        REDIS_URL: proxy.url,
        STEVEDORE_HTTP_HOST: '127.0.0.1',
        STEVEDORE_HTTP_PORT: String(port),
        STEVEDORE_GRPC_PORT: String(await freePort()),
        STEVEDORE_STATE_DIR: tempDir('stv-api-'),
        STEVEDORE_REGISTRY_MIRROR: registry.address,
        STEVEDORE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      }),
    );
    children.push(child);
    const childBase = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the api child to answer',
      async () => ((await api(childBase, 'GET', '/healthz')).status === 200 ? true : undefined),
      60_000,
    );

    const cut = proxy.cutAfter(isCreate);
    const submitting = api(childBase, 'POST', '/v1/jobs', { action: 'inspect', image, callback_url: receiver.url }, 15_000);
    const createArgs = await Promise.race([
      cut,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no job-create command went through the proxy')), 15_000)),
    ]);
    const id = createArgs[3]!.replace(/^stv:job:/, '');
    // Its process dies while Redis is unreachable: JobService.abandon() cannot fail the record.
    await child.kill();
    const answer = await submitting;
    assert.notEqual(answer.status, 202, `the submit was never accepted: ${JSON.stringify(answer.body)}`);
    await proxy.close();
    // And Redis dies too, and comes back on its data (append-only file, fsync always).
    await redis.kill();
    await redis.start();

    // What the reconciler finds: a queued record, in the live index, with nothing on the queue.
    assert.equal(await direct.hget(keys.job(id), 'state'), 'queued');
    assert.notEqual(await direct.zscore(keys.live, id), null);
    assert.equal(await direct.exists(`${QUEUE_PREFIX}:${queueName('inspect')}:${id}`), 0, 'BullMQ has no such job');

    const job = await waitTerminal(base, id, 60_000);
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'QUEUE_UNAVAILABLE');
    assert.equal(job.error.details.reconciled, 'never_queued');
    const age = Date.parse(job.finished_at) - Date.parse(job.created_at);
    assert.ok(age >= AFTER_MS, `failed ${age} ms after it was created: not before its ${AFTER_MS} ms bound`);
    assert.equal(await direct.zscore(keys.live, id), null, 'a failed job leaves the live index');

    const listed = (await api(base, 'GET', '/v1/jobs?state=failed&limit=50')).body.items as JobRecord[];
    assert.equal(listed.find((j) => j.id === id)?.error?.code, 'QUEUE_UNAVAILABLE', 'GET /v1/jobs shows it failed');
    const states = (await eventsOf(base, id)).filter((e) => e.type === 'state').map((e) => e.data.state);
    assert.deepEqual(states, ['queued', 'failed']);
    const hook = await waitUntil(
      'the job.failed webhook',
      async () => receiver.received.find((r) => r.headers['webhook-id'] === `msg_${id}`),
      30_000,
    );
    assert.equal(JSON.parse(hook.body).type, 'job.failed');
    assert.equal((await reconciled()).never_queued, 1);
    console.log(
      `reconcile: a record left queued by a dead submit failed ${(age / 1000).toFixed(1)} s after creation (bound ${AFTER_MS / 1000} s)`,
    );

    // A normal job submitted afterwards still runs.
    const next = await api(base, 'POST', '/v1/jobs', { action: 'inspect', image });
    assert.equal(next.status, 202);
    assert.equal((await waitTerminal(base, next.body.id, 120_000)).state, 'succeeded');
  });

  it('fails a running record no worker has (BullMQ has no job) with WORKER_LOST', async () => {
    // As a worker that died and whose BullMQ job was then removed would leave it.
    const store = new JobStore(direct, 3600);
    const id = randomUUID();
    const created = new Date().toISOString();
    await store.create({
      id,
      tenant: ADMIN_TENANT,
      action: 'inspect',
      state: 'queued',
      request: { action: 'inspect', image },
      result: null,
      error: null,
      created_at: created,
      started_at: null,
      finished_at: null,
      attempts: 0,
      timeout_seconds: 600,
    });
    await store.transition(id, ['queued'], 'running', { started_at: created, attempts: 1 });
    const job = await waitTerminal(base, id, 30_000);
    assert.equal(job.error.code, 'WORKER_LOST');
    assert.equal(job.error.details.reconciled, 'no_queue_entry');
    assert.equal((await reconciled()).no_queue_entry, 1);
  });

  it('leaves a healthy job running longer than the bound alone', async () => {
    const before = await reconciled();
    const res = await api(base, 'POST', '/v1/jobs', {
      action: 'build',
      dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep 12 && echo long-${Date.now()}\n`,
      no_cache: true,
    });
    assert.equal(res.status, 202);
    const id = res.body.id as string;
    // Running, older than the bound, and in the live index: a candidate of every pass.
    await waitUntil(
      'the build to be running past the bound',
      async () => {
        const job = await jobOf(base, id);
        return job.state === 'running' && Date.now() - Date.parse(job.started_at) > 2 * AFTER_MS ? job : undefined;
      },
      120_000,
    );
    assert.notEqual(await direct.zscore(keys.live, id), null);
    const job = await waitTerminal(base, id, 180_000);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual(await reconciled(), before, 'the reconciler touched nothing');
    assert.equal(await direct.zscore(keys.live, id), null);
  });
});
