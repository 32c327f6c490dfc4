// bench/submit: POST /v1/jobs throughput and latency beside a bare Fastify route that
// only does queue.add on the same Redis; submit → running with an idle worker beside a
// bare BullMQ add → processor; worker event → SSE client beside a bare XADD → XREAD.
// Run: npm run bench:submit   (needs `npm run setup` first; starts its own Redis and registry)
import autocannon from 'autocannon';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { openLoop } from './open-loop.js';
import {
  CACHE_DIR,
  finish,
  fmt,
  freePort,
  httpReady,
  median,
  percentile,
  PROJECT_DIR,
  startChild,
  startRedis,
  startRegistry,
  tempDir,
} from './support.js';

const DURATION_S = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLOCK_TICKS = 100; // USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s
const RATE = 500;
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const TOKEN = 'bench-admin-token-0123456789';

const loadAtStart = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');
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
  STEVEDORE_STATE_DIR: tempDir('stv-bench-'),
  STEVEDORE_CACHE_DIR: CACHE_DIR,
  ...extra,
});
const cli = join(PROJECT_DIR, 'bin', 'stevedore.js');

// Servers under test: stevedore's api role (no workers, like the baseline) and the baseline.
const apiPort = await freePort();
const api = await startChild(
  process.execPath,
  [cli, 'api'],
  stevedoreEnv({ STEVEDORE_HTTP_PORT: String(apiPort), STEVEDORE_HTTP_HOST: '127.0.0.1', STEVEDORE_GRPC_PORT: String(await freePort()) }),
  httpReady(`http://127.0.0.1:${apiPort}/healthz`),
  'stevedore api',
);
const basePort = await freePort();
const base = await startChild(
  process.execPath,
  [join(PROJECT_DIR, 'dist', 'bench', 'baseline-server.js')],
  { REDIS_URL: redisUrl, PORT: String(basePort) },
  httpReady(`http://127.0.0.1:${basePort}/jobs`),
  'baseline',
);

const floorPort = await freePort();
const floor = await startChild(
  process.execPath,
  [join(PROJECT_DIR, 'dist', 'bench', 'floor-server.js')],
  { REDIS_URL: redisUrl, PORT: String(floorPort) },
  httpReady(`http://127.0.0.1:${floorPort}/jobs`),
  'floor',
);

// The machine may be shared: the servers are measured in alternating rounds, so
// both see the same background load, and each round's ratio is taken on its own.
async function maxThroughput(url: string, headers: Record<string, string>) {
  const r = await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
    connections: 20,
    duration: DURATION_S,
  });
  return { rps: r.requests.average, total: r.requests.total, errors: r.errors + r.non2xx + r.timeouts };
}
/** CPU time (user + system) a process has used, in µs, from /proc (Linux). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLOCK_TICKS;
}
const auth = { authorization: `Bearer ${TOKEN}` };
const stvUrl = `http://127.0.0.1:${apiPort}/v1/jobs`;
const baseUrl = `http://127.0.0.1:${basePort}/jobs`;
const servers = [
  { url: stvUrl, headers: auth, pid: api.pid! },
  { url: baseUrl, headers: {}, pid: base.pid! },
  { url: `http://127.0.0.1:${floorPort}/jobs`, headers: {}, pid: floor.pid! },
];
const rounds: { rps: number; total: number; errors: number; cpuPerRequest: number }[][] = [];
for (const s of servers) await maxThroughput(s.url, s.headers); // warm-up
for (let i = 0; i < ROUNDS; i++) {
  const round = [];
  for (const s of servers) {
    const cpu0 = cpuMicros(s.pid);
    const r = await maxThroughput(s.url, s.headers);
    round.push({ ...r, cpuPerRequest: (cpuMicros(s.pid) - cpu0) / r.total });
  }
  rounds.push(round);
}
const summary = (k: number) => ({
  rps: median(rounds.map((r) => r[k]!.rps)),
  cpu: median(rounds.map((r) => r[k]!.cpuPerRequest)),
  errors: rounds.reduce((n, r) => n + r[k]!.errors, 0),
});
const [stvMax, baseMax, floorMax] = [summary(0), summary(1), summary(2)];
const ratios = rounds.map((r) => (100 * r[0]!.rps) / r[1]!.rps);
const floorRatios = rounds.map((r) => (100 * r[2]!.rps) / r[1]!.rps);
// Latency at a fixed rate, open loop (bench/open-loop.ts): requests leave on schedule
// whether or not earlier ones were answered.
const post = { 'content-type': 'application/json' };
const atRate = async (url: string, headers: Record<string, string>) => {
  await openLoop(url, { rate: RATE, durationS: 2, headers: { ...post, ...headers }, body }); // warm-up
  return openLoop(url, { rate: RATE, durationS: DURATION_S, headers: { ...post, ...headers }, body });
};
const stvRate = await atRate(stvUrl, auth);
const baseRate = await atRate(baseUrl, {});

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
    `POST throughput, req/s (20 connections, median of ${ROUNDS})`,
    fmt(stvMax.rps, 0),
    fmt(baseMax.rps, 0),
    `>= 60% of baseline: ${fmt(median(ratios), 0)}% (rounds: ${ratios.map((r) => fmt(r, 0)).join(', ')})`,
  ],
  [
    '  floor: bare route, record + queue add only, req/s',
    fmt(floorMax.rps, 0),
    fmt(baseMax.rps, 0),
    `${fmt(median(floorRatios), 0)}% of baseline (rounds: ${floorRatios.map((r) => fmt(r, 0)).join(', ')})`,
  ],
  ['server CPU per POST at full load, us', fmt(stvMax.cpu, 0), fmt(baseMax.cpu, 0), `floor: ${fmt(floorMax.cpu, 0)}`],
  ['errors at full load', String(stvMax.errors), String(baseMax.errors), ''],
  [`POST p50 at ${RATE} req/s (open loop), ms`, fmt(stvRate.p50, 2), fmt(baseRate.p50, 2), ''],
  [`POST p99 at ${RATE} req/s (open loop), ms`, fmt(stvRate.p99, 2), fmt(baseRate.p99, 2), '< 25 ms'],
  [
    `requests sent at ${RATE} req/s (errors)`,
    `${stvRate.sent} (${stvRate.errors}) at ${fmt(stvRate.achievedRate, 0)}/s`,
    `${baseRate.sent} (${baseRate.errors}) at ${fmt(baseRate.achievedRate, 0)}/s`,
    '',
  ],
  ['submit -> running p50, ms (idle worker)', fmt(percentile(pickup, 50), 2), fmt(percentile(barePickup, 50), 2), '<= 5 ms'],
  ['submit -> running p99, ms', fmt(percentile(pickup, 99), 2), fmt(percentile(barePickup, 99), 2), ''],
  ['worker event -> SSE client p50, ms', fmt(percentile(toSse, 50), 2), fmt(percentile(bareStream, 50), 2), ''],
  ['worker event -> SSE client p99, ms', fmt(percentile(toSse, 99), 2), fmt(percentile(bareStream, 99), 2), '<= 20 ms'],
];
const w = [56, 26, 26, 30];
console.log(
  `bench/submit: ${ROUNDS} alternating rounds of ${DURATION_S}s, ${SAMPLES} idle-worker samples (${toSse.length} live events), ` +
    `node ${process.version}, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (at start: ${loadAtStart})`,
);
console.log(['metric', 'stevedore', 'baseline', 'goal'].map((h, i) => h.padEnd(w[i]!)).join(''));
for (const row of rows) console.log(row.map((c, i) => c.padEnd(w[i]!)).join(''));
console.log(
  'baselines: bare Fastify route + queue.add (floor: + the job record, bench/floor-server.ts); ' +
    'bare BullMQ add -> processor; bare XADD -> XREAD BLOCK (same Redis)',
);
await finish();
