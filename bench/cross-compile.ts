// bench/cross-compile: one small C program (test/support/hello-c.ts) built through stevedore
// (POST /v1/jobs → terminal SSE event, push + platform check included), cold and cached:
//   (a) linux/amd64 alone                  — the baseline
//   (b) linux/amd64 + linux/arm64 emulated — apt-get and gcc of the arm64 half run under QEMU
//   (c) linux/amd64 + linux/arm64 cross    — FROM --platform=$BUILDPLATFORM, gcc-aarch64-linux-gnu
// Cold = `no_cache` (every step runs again, apt downloads included; the base image comes from
// the local registry; no registry cache is exported). The first repeat after it exports the
// registry cache (mode=max: for (c) that includes the build stage's compilers, which are not
// in the image, so they are compressed and pushed then); cached = the repeat after that,
// every step cached. Also: apt vs gcc time per platform
// from the build's steps, the platform check's verdict, and the e_machine of each platform's
// /usr/local/bin/hello (the cross-compiled arm64 one must be AArch64).
// Run: npm run bench:cross-compile   (needs `npm run setup` and Debian's archive; BENCH_RUNS=3 rounds
// by default, ~15 min on 2 cores, most of it the emulated arm64 apt-get)
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { machineName, readElfHeader } from '../src/analysis/image/elf-header.js';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { CROSS_DOCKERFILE, EMULATED_DOCKERFILE, HELLO_C, HELLO_PLATFORMS } from '../test/support/hello-c.js';
import { readLayerFiles } from '../test/support/images.js';
import { finish, fmt, median, startBuildStack, tempDir } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const TOKEN = 'bench-admin-token-0123456789';

const { registry, base } = await startBuildStack(TOKEN);
const client = new RegistryClient(registry);
const auth = { authorization: `Bearer ${TOKEN}` };

async function upload(dockerfile: string): Promise<string> {
  const dir = tempDir('stv-bench-ctx-');
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  writeFileSync(join(dir, 'hello.c'), HELLO_C);
  const tar = join(tempDir('stv-bench-tar-'), 'ctx.tar');
  await runProcess('tar', ['-cf', tar, '-C', dir, '.']);
  const res = await fetch(`${base}/v1/contexts`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/x-tar' },
    body: readFileSync(tar),
  });
  return ((await res.json()) as { digest: string }).digest;
}

interface Step {
  name: string;
  cached: boolean;
  duration_ms: number | null;
}
interface Run {
  ms: number;
  steps: Step[];
  check: string;
}

async function build(context: string, repo: string, platforms: string[], noCache: boolean): Promise<Run> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({
      action: 'build',
      context: { upload: context },
      platforms,
      provenance: false,
      tags: [`${registry}/${repo}:1`],
      no_cache: noCache,
    }),
  });
  const { id } = (await res.json()) as { id: string };
  const sse = await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth });
  for await (const chunk of sse.body as unknown as AsyncIterable<Uint8Array>) void chunk; // until the terminal event closes it
  const ms = performance.now() - t0;
  const job = (await (await fetch(`${base}/v1/jobs/${id}`, { headers: auth })).json()) as any;
  if (job.state !== 'succeeded') throw new Error(`${repo}: ${job.state} ${JSON.stringify(job.error).slice(0, 1000)}`);
  const pc = job.result.build.platform_check;
  const check = pc
    ? `${pc.ok ? 'ok' : 'MISMATCH'} (${pc.platforms.map((p: any) => `${p.platform.replace('linux/', '')} ${p.files_checked}`).join(', ')})`
    : 'none';
  return { ms, steps: job.result.build.steps, check };
}

/** e_machine of /usr/local/bin/hello per platform of the pushed image. */
async function machines(repo: string): Promise<string> {
  const top = await client.getManifest(repo, '1');
  const entries = top.json.manifests?.filter((m) => m.platform?.os !== 'unknown') ?? [
    { digest: top.digest, platform: { architecture: 'amd64' } },
  ];
  const out: string[] = [];
  for (const m of entries) {
    const layer = (await client.getManifest(repo, m.digest)).json.layers!.at(-1)!;
    const file = (await readLayerFiles(await client.getBlob(repo, layer.digest, layer.size), ['usr/local/bin/hello'])).get(
      'usr/local/bin/hello',
    );
    const header = file && readElfHeader(file.head);
    out.push(`${m.platform?.architecture}: ${header ? machineName(header) : 'not found'}`);
  }
  return out.join(', ');
}

/**
 * Seconds the apt and compile steps took, per platform, from the step names
 * (`[linux/arm64 2/4] RUN apt-get …`, `[linux/amd64->arm64 build 3/4] RUN case …`).
 */
function phases(steps: Step[], platforms: string[]): string {
  const sums = new Map<string, { apt: number; cc: number }>();
  for (const s of steps) {
    // A single-platform build names its steps without the platform: `[2/4] RUN …`.
    const m = /^\[(?:(\S+?)(?:->(\S+))?\s)?[^\]]*\]\s+RUN\s+(.*)$/s.exec(s.name);
    if (!m || s.duration_ms === null) continue;
    const from = (m[1] ?? platforms[0]!).replace('linux/', '');
    const label = m[2] ? `${from}->${m[2]}` : from;
    const sum = sums.get(label) ?? { apt: 0, cc: 0 };
    if (/apt-get/.test(m[3]!)) sum.apt += s.duration_ms;
    else sum.cc += s.duration_ms;
    sums.set(label, sum);
  }
  return [...sums].map(([label, s]) => `${label}: apt ${fmt(s.apt / 1000)} s, gcc ${fmt(s.cc / 1000)} s`).join('; ');
}

const emulated = await upload(EMULATED_DOCKERFILE);
const cross = await upload(CROSS_DOCKERFILE);
const cases = [
  { name: '(a) amd64 alone', context: emulated, repo: 'bench/hello-amd64', platforms: ['linux/amd64'] },
  { name: '(b) amd64+arm64 emulated', context: emulated, repo: 'bench/hello-emulated', platforms: HELLO_PLATFORMS },
  { name: '(c) amd64+arm64 cross', context: cross, repo: 'bench/hello-cross', platforms: HELLO_PLATFORMS },
];
const rows = cases.map((c) => ({ ...c, cold: [] as Run[], first: [] as Run[], cached: [] as Run[], elf: '' }));
// Round-robin, so a change in the machine's load (or the archive's speed) hits every case alike.
for (let i = 0; i < RUNS; i++) {
  for (const row of rows) {
    row.cold.push(await build(row.context, row.repo, row.platforms, true));
    row.first.push(await build(row.context, row.repo, row.platforms, false));
    row.cached.push(await build(row.context, row.repo, row.platforms, false));
    const last = (runs: Run[]) => fmt(runs.at(-1)!.ms / 1000);
    console.error(`round ${i + 1} ${row.name}: cold ${last(row.cold)} s, 1st repeat ${last(row.first)} s, cached ${last(row.cached)} s`);
  }
}
for (const row of rows) row.elf = await machines(row.repo);

const baseCold = median(rows[0]!.cold.map((r) => r.ms));
console.log(
  `bench/cross-compile: ${RUNS} round(s) of cold (no_cache), 1st repeat, cached per case, median, through stevedore; ` +
    `node ${process.version}`,
);
console.log(
  `${'case'.padEnd(27)}${'cold s'.padStart(8)}${'x (a)'.padStart(8)}${'1st repeat s'.padStart(14)}${'cached s'.padStart(10)}` +
    '   RUNs cached   platform check (cold): verdict, files checked per platform',
);
for (const r of rows) {
  const cold = median(r.cold.map((x) => x.ms));
  const cached = median(r.cached.map((x) => x.ms));
  const runs = r.cached[0]!.steps.filter((x) => /\bRUN\b/.test(x.name));
  const hits = `${runs.filter((x) => x.cached).length}/${runs.length}`;
  const first = median(r.first.map((x) => x.ms));
  console.log(
    `${r.name.padEnd(27)}${fmt(cold / 1000).padStart(8)}${fmt(cold / baseCold, 2).padStart(8)}` +
      `${fmt(first / 1000).padStart(14)}${fmt(cached / 1000).padStart(10)}   ${hits.padEnd(12)}${r.cold[0]!.check}`,
  );
}
console.log('\ncold runs, RUN step seconds per platform (apt-get step vs the gcc step), one line per run:');
for (const r of rows) for (const run of r.cold) console.log(`  ${r.name.padEnd(27)}${phases(run.steps, r.platforms)}`);
console.log('\nall runs, s:');
for (const r of rows)
  console.log(
    `  ${r.name.padEnd(27)}cold [${r.cold.map((x) => fmt(x.ms / 1000)).join(', ')}]  ` +
      `1st repeat [${r.first.map((x) => fmt(x.ms / 1000)).join(', ')}]  cached [${r.cached.map((x) => fmt(x.ms / 1000)).join(', ')}]`,
  );
console.log('\n/usr/local/bin/hello per platform:');
for (const r of rows) console.log(`  ${r.name.padEnd(27)}${r.elf}`);
await finish();
