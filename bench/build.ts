// bench/build: the same build through stevedore (POST /v1/jobs → terminal SSE event)
// and through buildctl directly with the same arguments, cold (no cache) and fully
// cached, several runs each, in one run. Goal: overhead <= 5% cold, <= 300 ms cached.
// Run: npm run bench:build   (needs `npm run setup`; starts its own Redis, registry, buildkitd)
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildctlArgs, type BuildSpec } from '../src/engines/buildkit/build-command.js';
import { runProcess } from '../src/engines/process-runner.js';
import { finish, fmt, median, startBuildStack, tempDir, TOOLS } from './support.js';

const RUNS_COLD = Number(process.env.BENCH_COLD_RUNS ?? 3);
const RUNS_CACHED = Number(process.env.BENCH_CACHED_RUNS ?? 5);
const TOKEN = 'bench-admin-token-0123456789';
const DOCKERFILE = `FROM debian:bookworm-slim AS build
ARG SIZE_MB=48
RUN head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom > /blob && gzip -6 -c /blob > /blob.gz && sha256sum /blob.gz > /blob.sum
RUN for i in $(seq 1 2000); do echo "line $i"; done > /lines.txt
FROM debian:bookworm-slim
COPY --from=build /blob.sum /lines.txt /out/
COPY app.txt /app.txt
CMD ["cat", "/out/blob.sum"]
`;

const { registry, buildkit, base } = await startBuildStack(TOKEN);
const auth = { authorization: `Bearer ${TOKEN}` };

// One context, uploaded once for the service and used as a directory by buildctl.
const ctxDir = tempDir('stv-bench-ctx-');
writeFileSync(join(ctxDir, 'Dockerfile'), DOCKERFILE);
writeFileSync(join(ctxDir, 'app.txt'), 'bench\n');
const tarPath = join(tempDir('stv-bench-tar-'), 'ctx.tar');
await runProcess('tar', ['-cf', tarPath, '-C', ctxDir, '.']);
const { readFileSync } = await import('node:fs');
const upload = await fetch(`${base}/v1/contexts`, {
  method: 'POST',
  headers: { ...auth, 'content-type': 'application/x-tar' },
  body: readFileSync(tarPath),
});
const { digest } = (await upload.json()) as { digest: string };

async function viaService(tag: string, noCache: boolean): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ action: 'build', context: { upload: digest }, tags: [tag], no_cache: noCache }),
  });
  const { id } = (await res.json()) as { id: string };
  const sse = await fetch(`${base}/v1/jobs/${id}/events`, { headers: auth });
  let text = '';
  for await (const chunk of sse.body as unknown as AsyncIterable<Uint8Array>) text += Buffer.from(chunk).toString();
  const ms = performance.now() - t0;
  if (!/"state":"succeeded"/.test(text)) throw new Error(`service build did not succeed: ${text.slice(-500)}`);
  return ms;
}

async function viaBuildctl(tag: string, noCache: boolean): Promise<number> {
  const ref = tag.slice(0, tag.lastIndexOf(':'));
  const spec: BuildSpec = {
    context: { dir: ctxDir },
    dockerfileDir: ctxDir,
    dockerfileName: 'Dockerfile',
    buildArgs: { SOURCE_DATE_EPOCH: '0' },
    platforms: [],
    tags: [tag],
    push: true,
    labels: {},
    cacheRef: `${ref}:buildcache`,
    noCache,
    secrets: [],
    provenance: true,
    annotations: { 'org.opencontainers.image.created': new Date(0).toISOString() },
    insecureRegistries: [],
    cacheSalt: 'stv-bench',
    metadataFile: join(tempDir('stv-bench-meta-'), 'meta.json'),
  };
  const t0 = performance.now();
  await runProcess(TOOLS.buildctl, buildctlArgs(buildkit, spec), { timeoutMs: 600_000 });
  return performance.now() - t0;
}

const results: Record<string, { service: number[]; direct: number[] }> = {
  cold: { service: [], direct: [] },
  cached: { service: [], direct: [] },
};
// Separate repositories, so each path has its own registry cache; alternate the order.
await viaService(`${registry}/bench/service:1`, false);
await viaBuildctl(`${registry}/bench/direct:1`, false);
for (let i = 0; i < RUNS_COLD; i++) {
  results.cold!.direct.push(await viaBuildctl(`${registry}/bench/direct:1`, true));
  results.cold!.service.push(await viaService(`${registry}/bench/service:1`, true));
}
for (let i = 0; i < RUNS_CACHED; i++) {
  results.cached!.service.push(await viaService(`${registry}/bench/service:1`, false));
  results.cached!.direct.push(await viaBuildctl(`${registry}/bench/direct:1`, false));
}

console.log(`bench/build: ${RUNS_COLD} cold (no cache) and ${RUNS_CACHED} fully cached runs each, node ${process.version}`);
console.log('case     stevedore median ms   buildctl median ms   overhead                 goal');
for (const [name, r] of Object.entries(results)) {
  const s = median(r.service);
  const d = median(r.direct);
  const goal = name === 'cold' ? '<= 5%' : '<= 300 ms';
  console.log(
    `${name.padEnd(9)}${fmt(s, 0).padEnd(22)}${fmt(d, 0).padEnd(21)}` +
      `${`${fmt(s - d, 0)} ms (${fmt((100 * (s - d)) / d, 1)}%)`.padEnd(25)}${goal}`,
  );
  console.log(
    `         runs: service [${r.service.map((v) => fmt(v, 0)).join(', ')}]  buildctl [${r.direct.map((v) => fmt(v, 0)).join(', ')}]`,
  );
}
await finish();
