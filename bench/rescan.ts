// bench/rescan: rescans after a vulnerability DB change, through `stevedore serve` with
// its default one rescan slot. N distinct digests (the seeded debian's amd64 image, each
// with its own config) are scanned once, then a new DB is loaded through PUT
// /v1/system/trivy-db and the time until every digest's catalogue record shows the new
// DB is measured: first from the stored SBOMs (what rescans do), then with the SBOMs
// taken out of the records (the image path: manifests and layers from the registry).
// During the SBOM-path rescan an interactive scan is submitted and its wait to start is
// measured beside the same scan submitted on the idle service (the baseline).
// Goal (issue 19): 1 000 digests within 15 min on one worker; an interactive scan starts
// within one job slot. Run: npm run bench:rescan (after `npm test` built the test DB).
import { createHash } from 'node:crypto';
import { cpSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { dbTarGz, setDbMetadata } from '../test/support/trivy-db-artifact.js';
import { CACHE_DIR, finish, fmt, median, startRedis, startRegistry, startServe, tempDir } from './support.js';

const N = Number(process.env.BENCH_DIGESTS ?? 60);
const TOKEN = 'bench-admin-token-0123456789';
const generator = process.env.STEVEDORE_TRIVY_TEST_DB;
if (!generator) throw new Error('set STEVEDORE_TRIVY_TEST_DB to the test DB generator (scripts/test.sh builds it)');
const auth = { authorization: `Bearer ${TOKEN}` };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const redisUrl = await startRedis();
const registry = await startRegistry();
const client = new RegistryClient(registry);
await seedBaseImage(client, CACHE_DIR, () => undefined, { required: true });

/** N + 2 images that differ only in a config label: distinct digests, the same layers and packages. */
async function makeImages(count: number): Promise<string[]> {
  const index = (await client.getManifest('library/debian', 'bookworm-slim')).json as {
    manifests: { digest: string; platform?: { architecture?: string } }[];
  };
  const amd64 = index.manifests.find((m) => m.platform?.architecture === 'amd64')!.digest;
  const manifest = (await client.getManifest('library/debian', amd64)).json as {
    config: { digest: string; size: number; mediaType: string };
    layers: { digest: string }[];
    mediaType: string;
  };
  for (const layer of manifest.layers)
    await client.ensureBlob('bench/app', layer.digest, () => client.getBlob('library/debian', layer.digest));
  const config = await client.getJsonBlob<{ config?: { Labels?: Record<string, string> } }>('library/debian', manifest.config.digest);
  const images: string[] = [];
  for (let i = 0; i < count; i++) {
    const bytes = Buffer.from(JSON.stringify({ ...config, config: { ...config.config, Labels: { 'bench.rescan': String(i) } } }));
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    await client.ensureBlob('bench/app', digest, async () => bytes);
    const body = Buffer.from(JSON.stringify({ ...manifest, config: { ...manifest.config, digest, size: bytes.length } }));
    const pinned = await client.putManifest('bench/app', `v${i}`, body, manifest.mediaType);
    images.push(`${registry}/bench/app@${pinned}`);
  }
  return images;
}

const dbDir = tempDir('stv-bench-trivy-');
await runProcess(generator, ['-out', dbDir]);
const base = await startServe(
  {
    REDIS_URL: redisUrl,
    BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock',
    STEVEDORE_REGISTRY_MIRROR: registry,
    STEVEDORE_TOKEN: TOKEN,
    STEVEDORE_TRIVY_CACHE_DIR: dbDir,
    STEVEDORE_DEFAULT_PIPELINE: 'none',
    STEVEDORE_RESCAN_INTERVAL_SECONDS: '3600',
    // No buildkitd: /readyz would say so; scans need none.
  },
  '/healthz',
);
const api = async (path: string, init: RequestInit = {}) => {
  const res = await fetch(`${base}${path}`, { ...init, headers: { ...auth, 'content-type': 'application/json', ...init.headers } });
  if (res.status >= 400) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<any>;
};
const submitScan = async (image: string) =>
  (await api('/v1/jobs', { method: 'POST', body: JSON.stringify({ action: 'scan', image, scanners: ['vuln'] }) })).id as string;
async function finished(id: string): Promise<any> {
  for (;;) {
    const job = await api(`/v1/jobs/${id}`);
    if (!['queued', 'running'].includes(job.state)) return job;
    await sleep(100);
  }
}
/** created → started of a job, once it started. */
async function startWait(id: string): Promise<number> {
  for (;;) {
    const job = await api(`/v1/jobs/${id}`);
    if (job.started_at) return Date.parse(job.started_at) - Date.parse(job.created_at);
    await sleep(50);
  }
}
async function records(): Promise<any[]> {
  const out: any[] = [];
  let cursor: string | null = null;
  do {
    const page: any = await api(`/v1/images?limit=200${cursor ? `&cursor=${cursor}` : ''}`);
    out.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}
let bump = 0;
/** Loads the DB again with a later UpdatedAt (same advisories: only the date changes). */
async function loadNewDb(): Promise<string> {
  const copy = tempDir('stv-bench-trivy-');
  cpSync(join(dbDir, 'db'), join(copy, 'db'), { recursive: true });
  const updatedAt = new Date(Date.UTC(2030, 0, 1, ++bump)).toISOString().replace('.000Z', 'Z');
  setDbMetadata(copy, { UpdatedAt: updatedAt });
  const res = await fetch(`${base}/v1/system/trivy-db`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/gzip' },
    body: await dbTarGz(copy),
  });
  if (res.status !== 200) throw new Error(`DB load: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { updated_at?: string; UpdatedAt?: string }).updated_at ?? updatedAt;
}
/** From the DB load until every rescanned digest's record names the new DB; optionally an interactive scan meanwhile. */
async function rescanAll(digests: Set<string>, interactive?: string) {
  const t0 = performance.now();
  const db = await loadNewDb();
  let wait: number | undefined;
  let waiting: Promise<number> | undefined;
  for (;;) {
    const done = (await records()).filter((r) => digests.has(r.digest) && r.latest_scan?.db_updated_at === db).length;
    if (interactive && !waiting && done >= Math.floor(digests.size / 4)) waiting = submitScan(interactive).then(startWait);
    if (done === digests.size) break;
    await sleep(250);
  }
  const ms = performance.now() - t0;
  if (waiting) wait = await waiting;
  return { ms, wait };
}

const images = await makeImages(N + 2);
const rescanned = images.slice(0, N);
// Every digest scanned once with the first DB (two scan slots, as configured by default).
const firstScans = await Promise.all(rescanned.map(submitScan));
for (const id of firstScans) if ((await finished(id)).state !== 'succeeded') throw new Error(`first scan ${id} failed`);
const digests = new Set((await records()).filter((r) => r.sbom).map((r) => r.digest as string));
if (digests.size !== N) throw new Error(`expected ${N} catalogued digests with an SBOM, found ${digests.size}`);
// Baseline: an interactive scan on the idle service.
const idleWait = await startWait(await submitScan(images[N]!));

const sbomPath = await rescanAll(digests, images[N + 1]);
const scanJobs: any[] = [];
for (let cursor: string | null = null; ;) {
  const page: any = await api(`/v1/jobs?action=scan&limit=100${cursor ? `&cursor=${cursor}` : ''}`);
  scanJobs.push(...page.items);
  if (!(cursor = page.next_cursor)) break;
}
const rescanJobs = scanJobs.filter((j: any) => j.origin?.kind === 'rescan');
const rescanDurations = rescanJobs
  .filter((j: any) => j.started_at && j.finished_at)
  .map((j: any) => Date.parse(j.finished_at) - Date.parse(j.started_at));
// The image path: the same rescans with the SBOM references taken out of the records.
const redis = new Redis(redisUrl);
for (const digest of digests) await redis.hdel(`stv:image:default:${digest}`, 'sbom');
redis.disconnect();
const imagePath = await rescanAll(digests);

const perMin = (ms: number) => (N / ms) * 60_000;
console.log(`bench/rescan: ${N} catalogued digests, one rescan slot (STEVEDORE_RESCAN_CONCURRENCY=1), node ${process.version}`);
console.log('path          total s   digests/min   1 000 digests would take   goal');
for (const [name, r] of [
  ['SBOM (stored)', sbomPath],
  ['image layers', imagePath],
] as const)
  console.log(
    name.padEnd(14) +
      fmt(r.ms / 1000, 1).padEnd(10) +
      fmt(perMin(r.ms), 0).padEnd(14) +
      `${fmt(1000 / perMin(r.ms), 1)} min`.padEnd(27) +
      '<= 15 min',
  );
console.log(
  `interactive scan, submitted with a quarter of the rescans done: waited ${fmt(sbomPath.wait!, 0)} ms to start ` +
    `(idle service: ${fmt(idleWait, 0)} ms); one rescan slot is ${fmt(median(rescanDurations), 0)} ms ` +
    `(median of ${rescanDurations.length})`,
);
await finish();
