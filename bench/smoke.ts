// bench/smoke: what one optimize-verify smoke run costs now that it goes through BuildKit
// (issue 17) instead of the Docker engine. The same small image (debian:bookworm-slim whose
// default command prints a line), run RUNS times each way, alternating: `docker run --rm
// --network none` after `docker pull` (baseline: the only runtime before) and runSmoke (a
// throwaway `FROM <image@digest>` + `RUN --network=none` step on the sandboxed buildkitd,
// --no-cache). Also a server (`sleep`) under a 2 s limit: the time a running program costs.
// Run: npm run bench:smoke   (needs `npm run setup`, root and a Docker engine for the baseline)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildkitClient } from '../src/engines/buildkit/buildkit-client.js';
import { buildctlArgs, pushedDockerfileSpec, tenantCacheSalt } from '../src/engines/buildkit/build-command.js';
import { runSmoke } from '../src/engines/buildkit/smoke-run.js';
import { ChildProcessRunner, runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { CACHE_DIR, finish, fmt, median, startBuildkitd, startRegistry, tempDir, TOOLS } from './support.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const registry = await startRegistry();
await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
const daemon = await startBuildkitd(registry);
const buildkit = new BuildkitClient(new ChildProcessRunner(), TOOLS.buildctl, daemon);

/** Builds and pushes one image; resolves to its reference pinned by digest. */
async function image(name: string, dockerfile: string): Promise<string> {
  const dir = tempDir('stv-bench-smoke-');
  writeFileSync(join(dir, 'Dockerfile'), dockerfile);
  const args = buildctlArgs(
    daemon,
    pushedDockerfileSpec(dir, [`${registry}/bench-smoke/${name}:1`], tenantCacheSalt('bench'), { metadataFile: join(dir, 'meta.json') }),
  );
  await runProcess(TOOLS.buildctl, args, { timeoutMs: 600_000 });
  const meta = (await import(join(dir, 'meta.json'), { with: { type: 'json' } })) as { default: Record<string, string> };
  return `${registry}/bench-smoke/${name}@${meta.default['containerimage.digest']}`;
}

const hello = await image('hello', 'FROM debian:bookworm-slim\nCMD ["echo","hello"]\n');
const signal = new AbortController().signal;
const viaBuildkit = async (ref: string, argv: string[], timeoutSeconds = 10) => {
  const t0 = performance.now();
  const run = await runSmoke(buildkit, { image: ref, argv, timeoutSeconds, cacheSalt: tenantCacheSalt('bench'), signal });
  if (!run.timed_out && run.stdout !== 'hello\n') throw new Error(`unexpected run ${JSON.stringify(run)}`);
  return performance.now() - t0;
};
const viaDocker = async (ref: string) => {
  const t0 = performance.now();
  await runProcess('docker', ['pull', '-q', ref], { timeoutMs: 300_000 });
  const { stdout } = await runProcess('docker', ['run', '--rm', '--network', 'none', ref], { timeoutMs: 60_000 });
  await runProcess('docker', ['rmi', '-f', ref]);
  if (stdout !== 'hello\n') throw new Error(`unexpected docker output ${JSON.stringify(stdout)}`);
  return performance.now() - t0;
};

const results = { docker: [] as number[], buildkit: [] as number[] };
for (let i = 0; i < RUNS; i++) {
  for (const way of i % 2 ? (['buildkit', 'docker'] as const) : (['docker', 'buildkit'] as const))
    results[way].push(way === 'docker' ? await viaDocker(hello) : await viaBuildkit(hello, ['echo', 'hello']));
}
const server = await viaBuildkit(hello, ['sleep', '1000'], 2);

console.log(`bench/smoke: ${RUNS} runs of one image's default command each way, alternating, node ${process.version}`);
console.log('case                          docker pull+run (before) ms   buildkit step (after) ms   change');
const [d, b] = [median(results.docker), median(results.buildkit)];
console.log(`${'echo hello (median)'.padEnd(30)}${fmt(d, 0).padEnd(30)}${fmt(b, 0).padEnd(27)}${fmt(b - d, 0)} ms`);
const list = (values: number[]) => values.map((v) => fmt(v, 0)).join(', ');
console.log(`${''.padEnd(30)}runs: docker [${list(results.docker)}]  buildkit [${list(results.buildkit)}]`);
console.log(`server still running at a 2 s limit, through buildkit: ${fmt(server, 0)} ms (limit + cancel overhead)`);
await finish();
