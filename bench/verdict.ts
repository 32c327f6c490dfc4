// bench/verdict: GET /v1/images/{digest}/verdict?policy=… p50/p99 beside its baseline,
// GET /v1/images/{digest} of the same catalogue record, in the same run on the same
// `serve` (alternated request by request, one at a time, keep-alive). The image is the
// seeded base (an index, two platforms) scanned for real with the project's test DB;
// the policy has every rule kind, and the tenant one exception covering the image.
// Then a synthetic large report (LARGE_FINDINGS findings, as many packages): its first,
// uncached verdict (parsed on the parse thread), the baseline's latency while that parse
// runs, and its cached verdict.
// Run: npm run bench:verdict   (needs STEVEDORE_TRIVY_TEST_DB, built by `npm test`; starts its own services)
import { randomUUID } from 'node:crypto';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CatalogueStore } from '../src/catalogue/catalogue-store.js';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { CACHE_DIR, finish, fmt, percentile, startRedis, startRegistry, startServe, tempDir } from './support.js';

const REQUESTS = Math.max(500, Number(process.env.BENCH_REQUESTS ?? 1000));
const LARGE_FINDINGS = Number(process.env.LARGE_FINDINGS ?? 20_000);
const TOKEN = 'bench-admin-token-0123456789';
const generator = process.env.STEVEDORE_TRIVY_TEST_DB;
if (!generator) throw new Error('set STEVEDORE_TRIVY_TEST_DB to the test DB generator (scripts/test.sh builds it)');

const redisUrl = await startRedis();
const registryAddress = await startRegistry();
await seedBaseImage(new RegistryClient(registryAddress), CACHE_DIR, () => undefined, { required: true });
const digest = (await new RegistryClient(registryAddress).manifestDigest('library/debian', 'bookworm-slim'))!;
const trivyCache = tempDir('stv-bench-trivy-');
await runProcess(generator, ['-out', trivyCache]);
const stateDir = tempDir('stv-bench-state-');
const base = await startServe(
  {
    REDIS_URL: redisUrl,
    BUILDKIT_HOST: 'unix:///nonexistent/buildkitd.sock',
    STEVEDORE_REGISTRY_MIRROR: registryAddress,
    STEVEDORE_TOKEN: TOKEN,
    STEVEDORE_STATE_DIR: stateDir,
    STEVEDORE_TRIVY_CACHE_DIR: trivyCache,
    STEVEDORE_TRIVY_DB_UPDATE: 'false',
  },
  '/healthz',
); // no buildkitd: /readyz would wait for it
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

async function finished(id: string): Promise<any> {
  for (;;) {
    const job = (await call('GET', `/v1/jobs/${id}`)).json;
    if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return job;
    await new Promise((r) => setTimeout(r, 100));
  }
}

const scan = await finished(
  (await call('POST', '/v1/jobs', { action: 'scan', image: `${registryAddress}/library/debian:bookworm-slim` })).json.id,
);
if (scan.state !== 'succeeded') throw new Error(`scan failed: ${JSON.stringify(scan.error)}`);
await call('PUT', '/v1/policies/bench', {
  // zlib's CRITICAL (no fix) counts: the tenant's exception is what lets the image pass.
  max_critical: 0,
  max_high: 5,
  fix_grace_days: 30,
  max_scan_age: '7d',
  deny_packages: [
    { name: 'lodash', versions: '<4.17.21' },
    { name: 'tar', versions: '<1.0' },
  ],
});
await call('POST', '/v1/exceptions', {
  vulnerability_id: 'CVE-2023-45853',
  scope: { repository: 'library/*' },
  reason: 'bench',
  owner: 'bench@example.com',
  expires: new Date(Date.now() + 30 * 86_400_000).toISOString(),
});

async function timed(path: string): Promise<number> {
  const t = performance.now();
  const res = await fetch(`${base}${path}`, { headers });
  await res.arrayBuffer();
  const ms = performance.now() - t;
  if (res.status !== 200) throw new Error(`${path}: ${res.status}`);
  return ms;
}

const recordPath = `/v1/images/${digest}`;
const verdictPath = `/v1/images/${digest}/verdict?policy=bench`;
const first = await timed(verdictPath); // the reports are parsed here (cold), then cached
const verdict = (await call('GET', verdictPath)).json;
for (let i = 0; i < 50; i++) {
  await timed(recordPath);
  await timed(verdictPath);
}
const baseline: number[] = [];
const verdicts: number[] = [];
for (let i = 0; i < REQUESTS; i++) {
  baseline.push(await timed(recordPath));
  verdicts.push(await timed(verdictPath));
}

// A large report: LARGE_FINDINGS findings over as many packages, under a job of its own.
const largeJob = randomUUID();
const dir = join(stateDir, 'artifacts', largeJob);
mkdirSync(dir, { recursive: true });
const packages = Array.from({ length: LARGE_FINDINGS }, (_, i) => ({ Name: `pkg-${i}`, Version: `${i % 9}.${i % 17}.${i % 5}` }));
const severities = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];
writeFileSync(
  join(dir, 'trivy-report.json'),
  JSON.stringify({
    ArtifactName: `${registryAddress}/library/big@sha256:${'e'.repeat(64)}`,
    Results: [
      {
        Target: 'big (debian 12)',
        Class: 'os-pkgs',
        Packages: packages,
        Vulnerabilities: packages.map((p, i) => ({
          VulnerabilityID: `CVE-2024-${100000 + i}`,
          PkgName: p.Name,
          InstalledVersion: p.Version,
          FixedVersion: i % 2 ? '99.0' : undefined,
          Severity: severities[i % 5],
          Title: `a title of some length for finding ${i}`,
          Description: 'd'.repeat(400),
          PrimaryURL: `https://avd.aquasec.com/nvd/cve-2024-${100000 + i}`,
          PublishedDate: '2024-01-01T00:00:00Z',
          CVSS: { nvd: { V3Score: 7.5, V3Vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' } },
        })),
      },
    ],
  }),
);
const largeBytes = statSync(join(dir, 'trivy-report.json')).size;
const redis = new Redis(redisUrl);
const bigDigest = `sha256:${'f'.repeat(64)}`;
const at = new Date().toISOString();
await new CatalogueStore(redis, 90).apply({
  tenant: 'default',
  digest: bigDigest,
  at,
  repository: `${registryAddress}/library/big`,
  repositories: [`${registryAddress}/library/big`],
  references: [],
  scan: {
    job_id: largeJob,
    scanned_at: at,
    db_updated_at: null,
    summary: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, fixable: 0 },
    policy: { passed: false, violations: 0 },
    platforms: ['linux/amd64'],
    reports: ['trivy-report.json'],
  },
});
redis.disconnect();
const bigPath = `/v1/images/${bigDigest}/verdict?policy=bench`;
// The baseline, requested back to back while the large report's first verdict is computed.
let parsing = true;
const during: number[] = [];
const probe = (async () => {
  while (parsing) during.push(await timed(recordPath));
})();
const bigFirst = await timed(bigPath);
parsing = false;
await probe;
const bigWarm: number[] = [];
for (let i = 0; i < 50; i++) bigWarm.push(await timed(bigPath));

const line = (label: string, ms: number[]) =>
  `${label.padEnd(52)} p50 ${fmt(percentile(ms, 50), 2).padStart(7)} ms  ` +
  `p99 ${fmt(percentile(ms, 99), 2).padStart(7)} ms  (n=${ms.length})`;
console.log(`bench/verdict: ${REQUESTS} requests each, alternated, one at a time; node ${process.version}`);
console.log(
  `image: ${digest} (${verdict.platforms.length} platforms, passed=${verdict.passed}, rules_failed=[${verdict.rules_failed.join(', ')}], ` +
    `${verdict.allowed.length} allowed by exception)`,
);
console.log(line('baseline: GET /v1/images/{digest}', baseline));
console.log(line('GET /v1/images/{digest}/verdict?policy=bench', verdicts));
console.log(`first verdict of the image (its reports parsed, uncached): ${fmt(first, 1)} ms`);
console.log(`large report: ${LARGE_FINDINGS} findings + ${LARGE_FINDINGS} packages, ${fmt(largeBytes / 1048576, 1)} MiB`);
console.log(`  first verdict (parsed on the parse thread): ${fmt(bigFirst, 0)} ms`);
console.log(line('  baseline GET /v1/images/{digest} during that parse', during));
console.log(line('  cached verdict of the large report', bigWarm));
await finish();
