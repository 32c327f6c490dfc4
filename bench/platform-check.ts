// bench/platform-check: the platform honesty check (issue 16) on the seeded base image
// and on a ~300 MB image built from it, beside plain layer streaming (image analysis,
// which reads the same layers without the ELF heads) measured in the same run.
// Goal: <= 1 s per 100 MB. Run: npm run bench:platform-check (own registry and buildkitd;
// BENCH_SMALL=1 skips the ~300 MB image).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { analyzeImage } from '../src/engines/registry/image-analysis.js';
import { checkImagePlatforms } from '../src/engines/registry/platform-check.js';
import { RegistryClient } from '../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../src/runtime/seed-base-image.js';
import { CACHE_DIR, finish, fmt, median, startBuildkitd, startRegistry } from './support.js';
import { pushBigImage } from '../test/support/big-image.js';

const registry = await startRegistry();
const client = new RegistryClient(registry);
await seedBaseImage(client, CACHE_DIR, () => undefined, { required: true });

/** Platform manifests of an image (one, or each of an index) with their layer bytes. */
async function platformManifests(repository: string, reference: string) {
  const top = await client.getManifest(repository, reference);
  const digests = top.json.manifests ? top.json.manifests.filter((d) => d.platform?.os !== 'unknown').map((d) => d.digest) : [top.digest];
  let compressed = 0;
  for (const digest of digests)
    compressed += ((await client.getManifest(repository, digest)).json.layers ?? []).reduce((s, l) => s + l.size, 0);
  return { top: top.digest, digests, compressed };
}

async function measure(label: string, repository: string, reference: string, rounds: number) {
  const image = await platformManifests(repository, reference);
  const check: number[] = [];
  const plain: number[] = [];
  let uncompressed = 0;
  let files = 0;
  let exempt = 0;
  let platforms = '';
  // How long the event loop waited at worst while the check ran (a server stays responsive);
  // a fresh histogram per run, so the time between runs is not counted as a delay.
  let delayP99 = 0;
  let delayMax = 0;
  for (let i = 0; i < rounds; i++) {
    let t0 = performance.now();
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const results = await checkImagePlatforms(client, { repository, digest: image.top });
    delay.disable();
    check.push(performance.now() - t0);
    delayP99 = Math.max(delayP99, delay.percentile(99));
    delayMax = Math.max(delayMax, delay.max);
    files = results.reduce((s, r) => s + r.files_checked, 0);
    exempt = results.reduce((s, r) => s + r.files_exempt, 0);
    platforms = results.map((r) => `${r.platform} ${r.ok ? 'ok' : `${r.mismatches_total} mismatches`}`).join(', ');
    t0 = performance.now();
    uncompressed = 0;
    for (const digest of image.digests) uncompressed += (await analyzeImage(client, repository, digest)).uncompressed_bytes;
    plain.push(performance.now() - t0);
  }
  const mb = uncompressed / 1e6;
  console.log(
    `${label}: ${fmt(image.compressed / 1e6, 0)} MB compressed, ${fmt(mb, 0)} MB of tar, ${platforms}; ` +
      `${files} ELF files checked (${exempt} exempt by path)`,
  );
  console.log(
    `  platform check: median ${fmt(median(check), 0)} ms [${check.map((v) => fmt(v, 0)).join(', ')}] = ` +
      `${fmt(mb / (median(check) / 1000), 0)} MB/s, ${fmt(median(check) / 1000 / (mb / 100), 2)} s per 100 MB of tar (goal <= 1); ` +
      `event loop delay p99 ${fmt(delayP99 / 1e6, 0)} ms, max ${fmt(delayMax / 1e6, 0)} ms`,
  );
  console.log(
    `  baseline layer streaming (image analysis): median ${fmt(median(plain), 0)} ms = ${fmt(mb / (median(plain) / 1000), 0)} MB/s; ` +
      `ratio ${fmt(median(check) / median(plain), 2)}x`,
  );
}

console.log(`bench/platform-check: node ${process.version}`);
await measure('seeded library/debian:bookworm-slim', 'library/debian', 'bookworm-slim', 5);

if (!process.env.BENCH_SMALL) {
  const buildkit = await startBuildkitd(registry);
  await pushBigImage(buildkit, `${registry}/bench/big:1`);
  await measure('~300 MB image (base + copy of /usr + 256 MiB of data)', 'bench/big', '1', 3);
}
await finish();
