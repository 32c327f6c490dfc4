// bench/optimize: Dockerfile analysis time (p50, goal <= 20 ms) and image analysis of a
// ~300 MB image through stevedore's engine, beside pulling and listing the same layers
// with plain tools (curl | tar -tz, one layer at a time) in the same run.
// Run: npm run bench:optimize   (starts its own registry and buildkitd)
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { buildctlArgs, pushedDockerfileSpec } from '../src/engines/buildkit/build-command.js';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { analyzeDockerfile } from '../src/analysis/dockerfile/index.js';
import { analyzeImage } from '../src/engines/registry/image-analysis.js';
import { CACHE_DIR, finish, fmt, median, percentile, PROJECT_DIR, startBuildkitd, startRegistry, tempDir, TOOLS } from './support.js';

// 1. Dockerfile analysis over the test corpus, many rounds.
const corpusDir = join(PROJECT_DIR, 'test', 'fixtures', 'dockerfiles');
const files = readdirSync(corpusDir)
  .filter((f) => !f.endsWith('.dockerignore'))
  .map((f) => readFileSync(join(corpusDir, f), 'utf8'));
const times: number[] = [];
for (let round = 0; round < 20; round++) {
  for (const text of files) {
    const t0 = performance.now();
    analyzeDockerfile(text);
    times.push(performance.now() - t0);
  }
}

// 2. A ~300 MB image: a Debian base plus 256 MiB of incompressible data in two layers.
const registry = await startRegistry();
await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
const buildkit = await startBuildkitd(registry);
const ctx = tempDir('stv-bench-opt-');
writeFileSync(
  join(ctx, 'Dockerfile'),
  'FROM debian:bookworm-slim\nRUN head -c 134217728 /dev/urandom > /a.bin\nRUN head -c 134217728 /dev/urandom > /b.bin && rm /a.bin\n',
);
await runProcess(
  TOOLS.buildctl,
  buildctlArgs(buildkit, pushedDockerfileSpec(ctx, [`${registry}/bench/big:1`], 'stv-bench', { metadataFile: join(ctx, 'meta.json') })),
  { timeoutMs: 900_000 },
);
const client = new RegistryClient(registry);
const digest = (await client.manifestDigest('bench/big', '1'))!;
const manifest = await client.getManifest('bench/big', digest);
const total = (manifest.json.layers ?? []).reduce((s, l) => s + l.size, 0);

const ours: number[] = [];
const plain: number[] = [];
for (let i = 0; i < 3; i++) {
  let t0 = performance.now();
  await analyzeImage(client, 'bench/big', digest);
  ours.push(performance.now() - t0);
  t0 = performance.now();
  for (const layer of manifest.json.layers ?? []) {
    await runProcess(
      'bash',
      ['-c', 'curl -sf "$1" | tar -tzf - > /dev/null', 'list', `http://${registry}/v2/bench/big/blobs/${layer.digest}`],
      { timeoutMs: 600_000 },
    );
  }
  plain.push(performance.now() - t0);
}

console.log(`bench/optimize: node ${process.version}`);
console.log(
  `Dockerfile analysis: ${times.length} analyses of ${files.length} corpus files: ` +
    `p50 ${fmt(percentile(times, 50), 2)} ms, p99 ${fmt(percentile(times, 99), 2)} ms (goal p50 <= 20 ms)`,
);
console.log(
  `image analysis of ${fmt(total / 1e6, 0)} MB in ${manifest.json.layers?.length} layers (3 ` +
    `runs): stevedore median ${fmt(median(ours), 0)} ms [${ours.map((v) => fmt(v, 0)).join(', ')}]`,
);
console.log(
  `  baseline curl | tar -tz per layer: median ${fmt(median(plain), 0)} ms ` +
    `[${plain.map((v) => fmt(v, 0)).join(', ')}]  ratio ${fmt(median(ours) / median(plain), 2)}x`,
);
await finish();
