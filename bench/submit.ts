// bench/submit: POST /v1/jobs throughput and latency beside a bare Fastify route that
// only does queue.add on the same Redis; submit → running with an idle worker beside a
// bare BullMQ add → processor; worker event → SSE client beside a bare XADD → XREAD.
// Run: npm run bench:submit   (needs `npm run setup` first; starts its own Redis and registry)
import autocannon from 'autocannon';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { CACHE_DIR, fmt, freePort, httpReady, percentile, PROJECT_DIR, startChild, startRedis, startRegistry } from './support.js';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 10);
const RATE = 500;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const TOKEN = 'bench-admin-token-0123456789';

const redisUrl = await startRedis();
const registry = await startRegistry();
await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
const image = `${registry}/library/debian:bookworm-slim`;
const body = JSON.stringify({ action: 'inspect', image });
const redis = new Redis(redisUrl);

const stevedoreEnv = (extra: Record<string, string>) => ({
  REDIS_URL: redisUrl,
  BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock', // not used by inspect
  STEVEDORE_REGISTRY_MIRROR: registry,
  STEVEDORE_TOKEN: TOKEN,
  STEVEDORE_SECRETS_KEY: Buffer.alloc(32, 1).toString('base64'),
  STEVEDORE_LOG_LEVEL: 'warn',
  STEVEDORE_STATE_DIR: mkdtempSync(join(tmpdir(), 'stv-bench-')),
  STEVEDORE_CACHE_DIR: CACHE_DIR,
  ...extra,
});
const cli = join(PROJECT_DIR, 'bin', 'stevedore.js');

// Servers under test: stevedore's api role (no workers, like the baseline) and the baseline.
const apiPort = await freePort();
await startChild(
  process.execPath,
  [cli, 'api'],
  stevedoreEnv({ STEVEDORE_HTTP_PORT: String(apiPort), STEVEDORE_HTTP_HOST: '127.0.0.1', STEVEDORE_GRPC_PORT: String(await freePort()) }),
  httpReady(`http://127.0.0.1:${apiPort}/healthz`),
  'stevedore api',
);
const basePort = await freePort();
await startChild(
  process.execPath,
  [join(PROJECT_DIR, 'dist', 'bench', 'baseline-server.js')],
  { REDIS_URL: redisUrl, PORT: String(basePort) },
  httpReady(`http://127.0.0.1:${basePort}/jobs`),
  'baseline',
);

async function load(url: string, headers: Record<string, string>, overallRate?: number) {
  const run = (duration: number) =>
    autocannon({
      url,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      connections: overallRate ? 10 : 20,
      duration,
      ...(overallRate ? { overallRate } : {}),
    });
  await run(2); // warm-up
  const r = await run(DURATION_S);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    errors: r.errors + r.non2xx + r.timeouts,
    total: r.requests.total,
  };
}
const auth = { authorization: `Bearer ${TOKEN}` };
const stvUrl = `http://127.0.0.1:${apiPort}/v1/jobs`;
const baseUrl = `http://127.0.0.1:${basePort}/jobs`;
const stvMax = await load(stvUrl, auth);
const baseMax = await load(baseUrl, {});
const stvRate = await load(stvUrl, auth, RATE);
const baseRate = await load(baseUrl, {}, RATE);

// Idle-worker latencies: clean queues, then one stevedore worker.
await redis.flushall();
await startChild(
  process.execPath,
  [cli, 'worker'],
  stevedoreEnv({}),
  async () => (await redis.keys('stv-bull:stevedore-inspect:*')).length > 0 || (await new Promise((r) => setTimeout(r, 1500)), true),
  'stevedore worker',
);
const pickup: number[] = [];
const toSse: number[] = [];
for (let i = 0; i < SAMPLES; i++) {
  const res = await fetch(stvUrl, { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body });
  const { id } = (await res.json()) as { id: string };
  const opened = performance.timeOrigin + performance.now();
  const sse = await fetch(`${stvUrl}/${id}/events`, { headers: auth });
  const decoder = new TextDecoder();
  let buffer = '';
  const events: { type: string; at: number; state?: string; receivedAt: number }[] = [];
  for await (const chunk of sse.body as unknown as AsyncIterable<Uint8Array>) {
    const receivedAt = performance.timeOrigin + performance.now();
    buffer += decoder.decode(chunk, { stream: true });
    let sep: number;
    while ((sep = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, sep);
      buffer = buffer.slice(sep + 2);
      const type = /^event: (.*)$/m.exec(frame)?.[1];
      const data = /^data: (.*)$/m.exec(frame)?.[1];
      if (type && data) events.push({ type, receivedAt, ...(JSON.parse(data) as { at: number; state?: string }) });
    }
  }
  const queued = events.find((e) => e.state === 'queued');
  const running = events.find((e) => e.state === 'running');
  if (queued && running) pickup.push(running.at - queued.at);
  for (const e of events) if (e.at > opened + 1) toSse.push(e.receivedAt - e.at); // live events only, not the replay
}

// Baselines for those: a bare BullMQ add → processor, and a bare XADD → blocking XREAD.
const bareQueue = new Queue('baseline-pickup', { connection: new Redis(redisUrl, { maxRetriesPerRequest: null }), prefix: 'baseline' });
const bareStarts = new Map<string, (t: number) => void>();
const bareWorker = new Worker('baseline-pickup', async (job) => bareStarts.get(job.id!)?.(performance.now()), {
  connection: new Redis(redisUrl, { maxRetriesPerRequest: null }),
  prefix: 'baseline',
});
await bareWorker.waitUntilReady();
const barePickup: number[] = [];
for (let i = 0; i < SAMPLES; i++) {
  const id = `b${i}`;
  const started = new Promise<number>((resolve) => bareStarts.set(id, resolve));
  const t0 = performance.now();
  await bareQueue.add('x', {}, { jobId: id, removeOnComplete: true });
  barePickup.push((await started) - t0);
}
const reader = new Redis(redisUrl);
const bareStream: number[] = [];
for (let i = 0; i < SAMPLES; i++) {
  const waiting = reader.xread('BLOCK', 5000, 'STREAMS', 'baseline:stream', '$');
  await new Promise((r) => setTimeout(r, 2));
  const t0 = performance.now();
  await redis.xadd('baseline:stream', '*', 'n', String(i));
  await waiting;
  bareStream.push(performance.now() - t0);
}
await bareWorker.close();
await bareQueue.close();

const rows: [string, string, string, string][] = [
  [
    'POST throughput, req/s (20 connections)',
    fmt(stvMax.rps, 0),
    fmt(baseMax.rps, 0),
    `>= 60% of baseline: ${fmt((100 * stvMax.rps) / baseMax.rps, 0)}%`,
  ],
  [`POST p50 at ${RATE} req/s, ms`, fmt(stvRate.p50), fmt(baseRate.p50), ''],
  [`POST p99 at ${RATE} req/s, ms`, fmt(stvRate.p99), fmt(baseRate.p99), '< 25 ms'],
  [`requests sent at ${RATE} req/s (errors)`, `${stvRate.total} (${stvRate.errors})`, `${baseRate.total} (${baseRate.errors})`, ''],
  ['submit -> running p50, ms (idle worker)', fmt(percentile(pickup, 50), 2), fmt(percentile(barePickup, 50), 2), '<= 5 ms'],
  ['submit -> running p99, ms', fmt(percentile(pickup, 99), 2), fmt(percentile(barePickup, 99), 2), ''],
  ['worker event -> SSE client p50, ms', fmt(percentile(toSse, 50), 2), fmt(percentile(bareStream, 50), 2), ''],
  ['worker event -> SSE client p99, ms', fmt(percentile(toSse, 99), 2), fmt(percentile(bareStream, 99), 2), '<= 20 ms'],
];
const w = [44, 14, 14, 30];
console.log(`bench/submit: ${DURATION_S}s runs, ${SAMPLES} idle-worker samples (${toSse.length} live events), node ${process.version}`);
console.log(['metric', 'stevedore', 'baseline', 'goal'].map((h, i) => h.padEnd(w[i]!)).join(''));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(w[i]!)).join(''));
console.log('baselines: bare Fastify route + queue.add; bare BullMQ add -> processor; bare XADD -> XREAD BLOCK (same Redis)');
process.exit(0);
