// bench/scan: the first scan through stevedore (POST → terminal event) beside `trivy
// image` run directly on the same image with the same DB and options, and the cached
// repeat. Goals: first scan <= 1.1x direct; cached repeat <= 50 ms.
// Run: npm run bench:scan   (after `npm test` has built test/trivy-db; starts its own services)
import { join } from 'node:path';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import {
  CACHE_DIR,
  finish,
  fmt,
  freePort,
  httpReady,
  median,
  PROJECT_DIR,
  startChild,
  startRedis,
  startRegistry,
  tempDir,
  TOOLS,
} from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const TOKEN = 'bench-admin-token-0123456789';
const generator = process.env.STEVEDORE_TRIVY_TEST_DB;
if (!generator) throw new Error('set STEVEDORE_TRIVY_TEST_DB to the test DB generator (scripts/test.sh builds it)');

const redisUrl = await startRedis();
const registry = await startRegistry();
await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
const digest = await new RegistryClient(registry).manifestDigest('library/debian', 'bookworm-slim');
const image = `${registry}/library/debian@${digest}`;

async function freshDb(): Promise<string> {
  const dir = tempDir('stv-bench-trivy-');
  await runProcess(generator!, ['-out', dir]);
  return dir;
}

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const serviceDb = await freshDb();
await startChild(
  process.execPath,
  [join(PROJECT_DIR, 'bin', 'stevedore.js'), 'serve'],
  {
    REDIS_URL: redisUrl,
    BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock',
    STEVEDORE_REGISTRY_MIRROR: registry,
    STEVEDORE_TOKEN: TOKEN,
    STEVEDORE_LOG_LEVEL: 'warn',
    STEVEDORE_HTTP_PORT: String(port),
    STEVEDORE_HTTP_HOST: '127.0.0.1',
    STEVEDORE_GRPC_PORT: String(await freePort()),
    STEVEDORE_STATE_DIR: tempDir('stv-bench-state-'),
    STEVEDORE_CACHE_DIR: CACHE_DIR,
    STEVEDORE_TRIVY_CACHE_DIR: serviceDb,
    STEVEDORE_TRIVY_DB_REPOSITORY: '127.0.0.1:1/aquasec/trivy-db:2',
  },
  httpReady(`${base}/healthz`),
  'stevedore serve',
);
const auth = { authorization: `Bearer ${TOKEN}` };

async function viaService(): Promise<{ ms: number; cached: boolean }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'scan', image }),
  });
  const { id } = (await res.json()) as { id: string };
  const sse = await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth });
  let text = '';
  for await (const chunk of sse.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
  const ms = performance.now() - t0;
  if (!/"state":"succeeded"/.test(text)) throw new Error(`scan failed: ${text.slice(-400)}`);
  return { ms, cached: /"cached":true/.test(text) };
}

/** What a CI script does today: trivy image against the registry, JSON + SARIF + CycloneDX. */
async function direct(cacheDir: string): Promise<number> {
  const out = tempDir('stv-bench-out-');
  const common = [
    '--quiet',
    '--cache-dir',
    cacheDir,
    '--skip-db-update',
    '--skip-java-db-update',
    '--skip-check-update',
    '--skip-version-check',
    '--disable-telemetry',
    '--offline-scan',
  ];
  const t0 = performance.now();
  await runProcess(TOOLS.trivy, [
    'image',
    ...common,
    '--image-src',
    'remote',
    '--scanners',
    'secret,vuln',
    '--format',
    'json',
    '--output',
    join(out, 'r.json'),
    '--list-all-pkgs',
    image,
  ]);
  await runProcess(TOOLS.trivy, ['convert', '--quiet', '--format', 'sarif', '--output', join(out, 'r.sarif'), join(out, 'r.json')]);
  await runProcess(TOOLS.trivy, ['convert', '--quiet', '--format', 'cyclonedx', '--output', join(out, 'r.cdx'), join(out, 'r.json')]);
  return performance.now() - t0;
}

// Same conditions on both sides: one Trivy cache dir each, kept across runs (Trivy's own
// layer cache warms after the first run on both); stevedore's scan-result cache is
// emptied before every "first" scan. Run 1 on each side is the fully cold one.
const first: number[] = [];
const directRuns: number[] = [];
const cachedRuns: number[] = [];
const directDb = await freshDb();
for (let i = 0; i < RUNS; i++) {
  directRuns.push(await direct(directDb));
  await runProcess('redis-cli', [
    '-u',
    redisUrl,
    'eval',
    "for _,k in ipairs(redis.call('keys','stv:scan:*')) do redis.call('del',k) end",
    '0',
  ]).catch(() => undefined);
  const r = await viaService();
  if (r.cached) throw new Error('first scan came from the cache');
  first.push(r.ms);
  const c = await viaService();
  if (!c.cached) throw new Error('repeat scan was not cached');
  cachedRuns.push(c.ms);
}
const f = median(first);
const d = median(directRuns);
console.log(`bench/scan: ${RUNS} runs each on ${image}, node ${process.version}`);
console.log('case                         stevedore median ms   trivy direct median ms   ratio     goal');
console.log(`first scan (json+sarif+cdx)  ${fmt(f, 0).padEnd(22)}${fmt(d, 0).padEnd(25)}${`${fmt(f / d, 2)}x`.padEnd(10)}<= 1.1x`);
console.log(`cached repeat                ${fmt(median(cachedRuns), 0).padEnd(22)}${'-'.padEnd(25)}${''.padEnd(10)}<= 50 ms`);
console.log(
  `fully cold (run 1): stevedore ${fmt(first[0]!, 0)} ms, trivy ` +
    `direct ${fmt(directRuns[0]!, 0)} ms (${fmt(first[0]! / directRuns[0]!, 2)}x)`,
);
console.log(
  `runs: first [${first.map((v) => fmt(v, 0)).join(', ')}]  direct ` +
    `[${directRuns.map((v) => fmt(v, 0)).join(', ')}]  cached [${cachedRuns.map((v) => fmt(v, 0)).join(', ')}]`,
);
await finish();
