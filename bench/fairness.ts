// bench/fairness: how long does one tenant's first build wait while another tenant has
// 100 builds queued? Measured twice in one run on the same service:
//   fair      — the flood and the newcomer are different tenants (our scheduler);
//   baseline  — the newcomer submits as the flooding tenant, i.e. plain FIFO, which is
//               what a strictly FIFO queue (Cloud Build, Harbor) gives every tenant.
// Goal: fair wait <= one build slot (the length of one build).
// Run: npm run bench:fairness   (needs `npm run setup`; starts Redis, registry, buildkitd)
//   BENCH_FLOOD=100 BENCH_BUILD_SECONDS=1 BENCH_CONCURRENCY=2
import { finish, fmt, startBuildStack } from './support.js';

const FLOOD = Number(process.env.BENCH_FLOOD ?? 100);
const BUILD_SECONDS = Number(process.env.BENCH_BUILD_SECONDS ?? 1);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2);
const TOKEN = 'bench-admin-token-0123456789';

const { base } = await startBuildStack(TOKEN, {
  STEVEDORE_CONCURRENCY: `build=${CONCURRENCY}`,
});

const call = async (method: string, path: string, key: string, body?: object) => {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return res.status === 204 ? undefined : ((await res.json()) as any);
};
const keyFor = async (tenant: string) =>
  (await call('POST', '/v1/api-keys', TOKEN, { tenant, scopes: ['jobs:read', 'jobs:write'], rate_limit_per_minute: 1_000_000 }))
    .key as string;
const build = (tag: string) => ({
  action: 'build',
  dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep ${BUILD_SECONDS} && echo ${tag}\n`,
  no_cache: true,
});
const waitFor = async (id: string, key: string, states: string[]) => {
  for (;;) {
    const job = await call('GET', `/v1/jobs/${id}`, key);
    if (states.includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** The newcomer's wait (submit → running) with FLOOD builds of `floodKey` queued ahead. */
async function scenario(name: string, floodKey: string, newcomerKey: string): Promise<{ waitMs: number; buildMs: number }> {
  const run = `${name}-${Date.now()}`;
  const flood: string[] = [];
  for (let i = 0; i < FLOOD; i++) flood.push((await call('POST', '/v1/jobs', floodKey, build(`${run}-${i}`))).id);
  await waitFor(flood[CONCURRENCY - 1]!, floodKey, ['running']);
  const submitted = Date.now();
  const id = (await call('POST', '/v1/jobs', newcomerKey, build(`${run}-newcomer`))).id;
  const started = await waitFor(id, newcomerKey, ['running', 'succeeded']);
  const done = await waitFor(id, newcomerKey, ['succeeded', 'failed']);
  for (const f of flood) await call('POST', `/v1/jobs/${f}/cancel`, floodKey).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 2000)); // let cancelled builds stop
  return { waitMs: Date.parse(started.started_at) - submitted, buildMs: Date.parse(done.finished_at) - Date.parse(done.started_at) };
}

const [teamA, teamB] = [await keyFor('bench-a'), await keyFor('bench-b')];
await scenario('warmup', teamA, teamA).catch(() => undefined); // pulls the base image into buildkitd once
const fair = await scenario('fair', teamA, teamB);
const fifo = await scenario('fifo', teamA, teamA);
console.log(`bench/fairness: ${FLOOD} builds of ${BUILD_SECONDS} s queued by one tenant, build concurrency ${CONCURRENCY}`);
console.log('| case | newcomer wait (submit → running) | one build |');
console.log('|---|---|---|');
console.log(`| fair (different tenants) | ${fmt(fair.waitMs / 1000, 2)} s | ${fmt(fair.buildMs / 1000, 2)} s |`);
console.log(`| baseline FIFO (same queue order) | ${fmt(fifo.waitMs / 1000, 2)} s | ${fmt(fifo.buildMs / 1000, 2)} s |`);
console.log(`goal: fair wait <= one build slot (${fmt(fair.buildMs / 1000, 2)} s): ${fair.waitMs <= fair.buildMs ? 'met' : 'NOT met'}`);
await finish();
