// bench/default-pipeline: what the default pipeline (STEVEDORE_DEFAULT_PIPELINE=sbom,sign)
// adds to a build that pushes a ~100 MB image: the same build on a `serve` with the policy
// off (baseline) and on (a signing key configured: SBOM per platform manifest, signature,
// CycloneDX attestation), alternated, several runs each, medians. Every run builds a new
// 100 MB layer (a nonce build arg), so neither Trivy's layer cache nor BuildKit's cache
// answers for it. Goal: <= 2 s extra. Time = the job's started_at → finished_at.
// Run: npm run bench:default-pipeline   (needs `npm run setup`; starts its own Redis,
// registry, buildkitd and two `serve` processes on separate Redis databases; loopback only)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { CACHE_DIR, finish, fmt, median, startBuildkitd, startRedis, startRegistry, startServe, tempDir, TOOLS } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 4);
const TOKEN = 'bench-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };
const DOCKERFILE = `FROM debian:bookworm-slim
ARG NONCE
RUN echo "$NONCE" > /nonce && head -c 100000000 /dev/urandom > /blob
CMD ["cat", "/nonce"]
`;

const redisUrl = await startRedis();
const registry = await startRegistry();
await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
const buildkit = await startBuildkitd(registry);

// A cosign key for the policy-on server (the default key signs).
const keysDir = tempDir('stv-bench-keys-');
const password = `bench-${Date.now()}`;
await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], {
  env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: password },
});
writeFileSync(
  join(keysDir, 'keys.json'),
  JSON.stringify({ keys: [{ name: 'release', key: join(keysDir, 'release.key'), password_env: 'STV_BENCH_KEY_PASSWORD' }] }),
);

/** A `serve` on its own Redis database (its own queues), sharing buildkitd and the registry. */
async function serve(db: number, env: Record<string, string>): Promise<string> {
  return startServe({
    REDIS_URL: redisUrl.replace(/\/0$/, `/${db}`),
    BUILDKIT_HOST: buildkit,
    STEVEDORE_REGISTRY_MIRROR: registry,
    STEVEDORE_TOKEN: TOKEN,
    // No Trivy DB traffic: the SBOM needs no DB, and this bench stays on loopback.
    STEVEDORE_TRIVY_DB_UPDATE: 'false',
    STEVEDORE_SIGNING_OFFLINE: 'true',
    ...env,
  });
}

const off = await serve(0, { STEVEDORE_DEFAULT_PIPELINE: 'none' });
const on = await serve(1, {
  STEVEDORE_DEFAULT_PIPELINE: 'sbom,sign',
  STEVEDORE_SIGNING_KEYS_FILE: join(keysDir, 'keys.json'),
  STV_BENCH_KEY_PASSWORD: password,
});

interface Run {
  ms: number;
  /** The default stages' wall time: max(sbom, sign) + attest (on only). */
  extraStagesMs: number;
  stages: string;
}

async function build(base: string, repo: string, nonce: string): Promise<Run> {
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      action: 'build',
      dockerfile_inline: DOCKERFILE,
      build_args: { NONCE: nonce },
      tags: [`${registry}/bench/${repo}:${nonce}`],
    }),
  });
  if (res.status !== 202) throw new Error(`submit: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  for (;;) {
    await new Promise((r) => setTimeout(r, 200));
    const job = (await (await fetch(`${base}/v1/jobs/${id}`, { headers: auth })).json()) as {
      state: string;
      error: unknown;
      started_at: string;
      finished_at: string;
      result: { stages?: { name: string; duration_ms: number }[]; attestations?: string[]; signed?: unknown };
    };
    if (['queued', 'running'].includes(job.state)) continue;
    if (job.state !== 'succeeded') throw new Error(`build ${repo}: ${job.state} ${JSON.stringify(job.error)}`);
    const stages = job.result.stages ?? [];
    if (base === on && !(job.result.signed && job.result.attestations?.includes('cyclonedx')))
      throw new Error(`policy-on build not signed and attested: ${JSON.stringify(job.result)}`);
    return {
      ms: Date.parse(job.finished_at) - Date.parse(job.started_at),
      // sbom and sign run side by side, attest after both.
      extraStagesMs:
        Math.max(0, ...stages.filter((s) => s.name === 'sbom' || s.name === 'sign').map((s) => s.duration_ms)) +
        (stages.find((s) => s.name === 'attest')?.duration_ms ?? 0),
      stages: stages.map((s) => `${s.name} ${s.duration_ms}`).join(', '),
    };
  }
}

// One warm-up each (base image pulled into buildkitd, Trivy and cosign binaries paged in).
await build(off, 'off', 'warm');
await build(on, 'on', 'warm');
const offRuns: Run[] = [];
const onRuns: Run[] = [];
for (let i = 0; i < RUNS; i++) {
  // Alternated, so a drift in the machine's load hits both sides alike.
  // A nonce of its own for each build: the same one would let the second build hit BuildKit's cache.
  const nonce = `${Date.now()}-${i}`;
  if (i % 2) {
    onRuns.push(await build(on, 'on', `${nonce}-on`));
    offRuns.push(await build(off, 'off', `${nonce}-off`));
  } else {
    offRuns.push(await build(off, 'off', `${nonce}-off`));
    onRuns.push(await build(on, 'on', `${nonce}-on`));
  }
}

const mOff = median(offRuns.map((r) => r.ms));
const mOn = median(onRuns.map((r) => r.ms));
const mStages = median(onRuns.map((r) => r.extraStagesMs));
console.log(`bench/default-pipeline: ~100 MB single-platform image, ${RUNS} runs each (alternated), node ${process.version}`);
console.log('case                         median ms   runs');
console.log(`policy off (baseline)        ${fmt(mOff, 0).padEnd(12)}[${offRuns.map((r) => r.ms).join(', ')}]`);
console.log(`policy on (sbom,sign + key)  ${fmt(mOn, 0).padEnd(12)}[${onRuns.map((r) => r.ms).join(', ')}]`);
console.log(`extra (on − off medians)     ${fmt(mOn - mOff, 0).padEnd(12)}goal <= 2000 ms`);
console.log(`max(sbom,sign)+attest stages ${fmt(mStages, 0).padEnd(12)}[${onRuns.map((r) => r.extraStagesMs).join(', ')}]`);
console.log(`on, last run's stages (ms): ${onRuns.at(-1)!.stages}`);
await finish();
