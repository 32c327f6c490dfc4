import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CACHE_DIR, OFFLINE_TRIVY_DB, PROJECT_DIR, TEST_SECRETS_KEY, testRedisUrl } from '../support/env.js';
import { freePort, TOKEN } from '../support/stack.js';
import { startBuildkitd, startRedis, startSeededRegistry } from '../support/services.js';
import { tempDir } from '../support/temp-dir.js';

interface Role {
  child: ChildProcess;
  lines: Record<string, unknown>[];
}

/** Starts `stevedore api|worker` as a real process and keeps its JSON log lines. */
function startRole(role: 'api' | 'worker', env: Record<string, string>): Role {
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), role], {
    env: { PATH: process.env.PATH!, STEVEDORE_CACHE_DIR: CACHE_DIR, ...OFFLINE_TRIVY_DB, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    const parts = buffer.split('\n');
    buffer = parts.pop()!;
    for (const line of parts) if (line.trim()) lines.push(JSON.parse(line) as Record<string, unknown>); // every line must be JSON
  });
  child.stderr.on('data', (d) => process.stderr.write(d));
  return { child, lines };
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The value of one sample line of a Prometheus text exposition (undefined when absent). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const inside = line.slice(name.length + 1, line.indexOf('}'));
    if (want.every((w) => inside.split(',').includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('observability: /metrics and JSON logs of split api and worker processes', () => {
  const stopping: (() => Promise<unknown>)[] = [];
  let api: Role;
  let worker: Role;
  let base: string;
  let workerMetrics: string;
  let registry: string;

  before(async () => {
    const seeded = await startSeededRegistry();
    const redis = await startRedis();
    const buildkitd = await startBuildkitd(seeded.address);
    stopping.push(
      () => seeded.container.stop(),
      () => redis.stop(),
      () => buildkitd.stop(),
    );
    registry = seeded.address;
    const [http, grpc, metrics] = [await freePort(), await freePort(), await freePort()];
    const common = {
      REDIS_URL: testRedisUrl(redis.getMappedPort(6379)),
      STEVEDORE_TOKEN: TOKEN,
      STEVEDORE_SECRETS_KEY: TEST_SECRETS_KEY,
      BUILDKIT_HOST: buildkitd.address,
      STEVEDORE_REGISTRY_MIRROR: registry,
      STEVEDORE_LOG_LEVEL: 'info',
      STEVEDORE_STATE_DIR: tempDir('stv-obs-'),
    };
    api = startRole('api', {
      ...common,
      STEVEDORE_HTTP_HOST: '127.0.0.1',
      STEVEDORE_HTTP_PORT: String(http),
      STEVEDORE_GRPC_PORT: String(grpc),
    });
    worker = startRole('worker', { ...common, STEVEDORE_HTTP_HOST: '127.0.0.1', STEVEDORE_METRICS_PORT: String(metrics) });
    base = `http://127.0.0.1:${http}`;
    workerMetrics = `http://127.0.0.1:${metrics}/metrics`;
    await until('api ready', async () => (await fetch(`${base}/healthz`)).ok || undefined);
    await until('worker metrics', async () => (await fetch(workerMetrics)).ok || undefined);
  });
  after(async () => {
    for (const role of [api, worker]) role?.child.kill('SIGKILL');
    for (const stop of stopping) await stop().catch(() => undefined);
  });

  const submit = async (body: object, requestId: string) => {
    const res = await fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-request-id': requestId },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  };
  const finished = (id: string) =>
    until(
      `job ${id}`,
      async () => {
        const job = (await (await fetch(`${base}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
          state: string;
        };
        return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state) ? job : undefined;
      },
      120_000,
    );

  it('counts jobs, durations, queue depth, tool runs and HTTP requests under the documented names', async () => {
    const inspect = await submit({ action: 'inspect', image: `${registry}/library/debian:bookworm-slim` }, 'obs-inspect-1');
    const build = await submit(
      { action: 'build', dockerfile_inline: `FROM debian:bookworm-slim\nRUN echo observed-${Date.now()}\n` },
      'obs-build-1',
    );
    assert.equal((await finished(inspect)).state, 'succeeded');
    assert.equal((await finished(build)).state, 'succeeded');

    const apiText = await (await fetch(`${base}/metrics`)).text();
    assert.ok(
      (sample(apiText, 'stevedore_jobs_total', { action: 'inspect', state: 'queued' }) ?? 0) >= 1,
      'api counts the queued jobs it created',
    );
    assert.ok(
      (sample(apiText, 'stevedore_http_request_duration_seconds_count', { method: 'POST', route: '/v1/jobs', status: '202' }) ?? 0) >= 2,
    );
    assert.notEqual(sample(apiText, 'stevedore_queue_depth', { queue: 'stevedore-build', state: 'waiting' }), undefined);
    assert.match(apiText, /# TYPE stevedore_webhook_deliveries_total counter/);

    const workerText = await (await fetch(workerMetrics)).text();
    assert.ok((sample(workerText, 'stevedore_jobs_total', { action: 'inspect', state: 'succeeded' }) ?? 0) >= 1);
    assert.ok((sample(workerText, 'stevedore_job_duration_seconds_count', { action: 'build', state: 'succeeded' }) ?? 0) >= 1);
    assert.ok(
      (sample(workerText, 'stevedore_tool_duration_seconds_count', { tool: 'buildctl', outcome: 'ok' }) ?? 0) >= 1,
      'buildctl runs are timed',
    );
    assert.equal(apiText.includes(inspect) || workerText.includes(inspect), false, 'no job id becomes a label');
  });

  it('logs one JSON line per request and per job transition, correlated by request id and job id', async () => {
    const id = await submit({ action: 'inspect', image: `${registry}/library/debian:bookworm-slim` }, 'obs-correlate-7');
    await finished(id);
    const queued = await until('queued line', () => api.lines.find((l) => l.job_id === id && l.state === 'queued'));
    assert.equal(queued.request_id, 'obs-correlate-7', 'the submit transition carries the request id');
    const request = await until('request line', () =>
      api.lines.find((l) => (l.req as { id?: string } | undefined)?.id === 'obs-correlate-7' && l.res),
    );
    assert.equal((request.res as { statusCode: number }).statusCode, 202);
    assert.equal(JSON.stringify(request).includes(TOKEN), false, 'the bearer token is redacted');
    const states = await until('worker transitions', () => {
      const seen = worker.lines.filter((l) => l.job_id === id).map((l) => l.state);
      return seen.includes('succeeded') ? seen : undefined;
    });
    assert.deepEqual(states, ['running', 'succeeded']);
    const done = worker.lines.find((l) => l.job_id === id && l.state === 'succeeded')!;
    assert.equal(done.action, 'inspect');
    assert.equal(done.tenant, 'default');
    assert.equal(typeof done.duration_ms, 'number');
  });
});
