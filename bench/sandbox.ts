// bench/sandbox: what the build sandbox (issue 13) costs. The same build, with the same
// buildctl arguments, on two buildkitd daemons started side by side in one run: the
// host-network daemon of before (baseline) and the sandboxed one `serve` runs now (bridge
// network, firewall, per-tenant cache salt). Cold (no cache) and cached runs, alternating.
// Goal: cold <= 5 % slower; the same tenant's cached rebuild unchanged. Also shows that
// another tenant's identical build is not served from the first tenant's cache.
// Run: npm run bench:sandbox   (needs `npm run setup` and root; starts its own registry and daemons)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildctlArgs, tenantCacheSalt, type BuildSpec } from '../src/engines/buildkit/build-command.js';
import { runProcess } from '../src/engines/process-runner.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { CACHE_DIR, finish, fmt, median, startBuildkitd, startRegistry, tempDir, TOOLS } from './support.js';

const RUNS_COLD = Number(process.env.BENCH_COLD_RUNS ?? 3);
const RUNS_CACHED = Number(process.env.BENCH_CACHED_RUNS ?? 5);
// RUN steps (where the sandbox acts: a network namespace per step), plus COPY and a second stage.
const DOCKERFILE = `FROM debian:bookworm-slim AS build
RUN head -c 33554432 /dev/urandom > /blob && gzip -6 -c /blob > /blob.gz && sha256sum /blob.gz > /blob.sum
RUN for i in $(seq 1 2000); do echo "line $i"; done > /lines.txt
RUN echo one > /1 && echo two > /2 && echo three > /3
FROM debian:bookworm-slim
COPY --from=build /blob.sum /lines.txt /out/
COPY app.txt /app.txt
RUN cat /out/blob.sum /app.txt > /summary
`;

const registry = await startRegistry();
await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
const daemons = { host: await startBuildkitd(registry, { sandbox: false }), sandbox: await startBuildkitd(registry) };
const ctxDir = tempDir('stv-bench-sandbox-');
writeFileSync(join(ctxDir, 'Dockerfile'), DOCKERFILE);
writeFileSync(join(ctxDir, 'app.txt'), 'bench\n');

/** One build; resolves to its wall time and how many steps came from the cache. */
async function build(daemon: keyof typeof daemons, tenant: string, noCache: boolean): Promise<{ ms: number; cached: number }> {
  const spec: BuildSpec = {
    context: { dir: ctxDir },
    dockerfileDir: ctxDir,
    dockerfileName: 'Dockerfile',
    buildArgs: { SOURCE_DATE_EPOCH: '0' },
    platforms: [],
    tags: [`${registry}/bench-${daemon}/${tenant}:1`],
    push: true,
    labels: {},
    noCache,
    secrets: [],
    provenance: false,
    annotations: {},
    insecureRegistries: [],
    metadataFile: join(tempDir('stv-bench-meta-'), 'meta.json'),
    cacheSalt: tenantCacheSalt(tenant),
  };
  const t0 = performance.now();
  const { stderr } = await runProcess(
    TOOLS.buildctl,
    buildctlArgs(daemons[daemon], spec).map((a) => (a === 'rawjson' ? 'plain' : a)),
    { timeoutMs: 600_000 },
  );
  return { ms: performance.now() - t0, cached: (stderr.match(/^#\d+ CACHED$/gm) ?? []).length };
}

/** The daemons in the order run i builds on them: alternating, so whatever going first or second costs falls on both. */
const alternate = (i: number): (keyof typeof daemons)[] => (i % 2 ? ['sandbox', 'host'] : ['host', 'sandbox']);
const results = { cold: { host: [] as number[], sandbox: [] as number[] }, cached: { host: [] as number[], sandbox: [] as number[] } };
for (let i = 0; i < RUNS_COLD; i++) {
  for (const d of alternate(i)) results.cold[d].push((await build(d, 'team-a', true)).ms);
}
// Warm both caches without --no-cache once (a --no-cache build saves its results too, but start clean).
for (const d of ['host', 'sandbox'] as const) await build(d, 'team-a', false);
const cachedSteps: Record<string, number> = {};
for (let i = 0; i < RUNS_CACHED; i++) {
  for (const d of alternate(i)) {
    const r = await build(d, 'team-a', false);
    results.cached[d].push(r.ms);
    cachedSteps[d] = r.cached;
  }
}
const other = await build('sandbox', 'team-b', false);

console.log(
  `bench/sandbox: ${RUNS_COLD} cold (no cache) and ${RUNS_CACHED} cached runs on each daemon, alternating, node ${process.version}`,
);
console.log('case                  host network (before) ms   sandbox (after) ms   change        goal');
for (const [name, r] of Object.entries(results)) {
  const [h, s] = [median(r.host), median(r.sandbox)];
  const goal = name === 'cold' ? '<= 5% slower' : 'unchanged';
  console.log(
    `${`${name} (median)`.padEnd(22)}${fmt(h, 0).padEnd(27)}${fmt(s, 0).padEnd(21)}` +
      `${`${fmt(s - h, 0)} ms (${fmt((100 * (s - h)) / h, 1)}%)`.padEnd(14)}${goal}`,
  );
  console.log(
    `${''.padEnd(22)}runs: host [${r.host.map((v) => fmt(v, 0)).join(', ')}]  sandbox [${r.sandbox.map((v) => fmt(v, 0)).join(', ')}]`,
  );
}
console.log(`cached steps per rebuild (same tenant): host ${cachedSteps.host}, sandbox ${cachedSteps.sandbox}`);
console.log(
  `another tenant, same Dockerfile, on the sandbox: ${fmt(other.ms, 0)} ms with ${other.cached} ` +
    `cached steps (the base image's FROM and COPY of the same content may be; no RUN step is)`,
);
await finish();
