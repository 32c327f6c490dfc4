// bench/optimize-corpus: issue 18's table. Each naive Dockerfile of the corpus
// (test/support/optimize-corpus.ts, the same one the integration test checks) is optimized with
// verify and its extra checks, then built cold as a plain build job (no_cache: the baseline,
// measured in this run). Printed per case: original size, safe-rewrite size,
// multi-stage size, best base, smoke test, verify time beside the cold build and their ratio
// (goal: verify <= 3x the original's cold build).
// Run: npm run bench:optimize-corpus   (starts its own Redis, registry, buildkitd and serve;
// the corpus installs from Debian's archive, PyPI and the npm registry)
import { OPTIMIZE_CORPUS } from '../test/support/optimize-corpus.js';
import { runProcess } from '../src/engines/process-runner.js';
import { finish, fmt, median, startBuildStack, TOOLS } from './support.js';

const TOKEN = 'bench-admin-token-0123456789';
const JOB_TIMEOUT_S = 1800;
const only = process.argv.slice(2);

const { registry, buildkit, base } = await startBuildStack(TOKEN);
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

/** Submits a job and polls it to its end; resolves with the job and its wall time. */
async function run(body: object): Promise<{ job: any; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ ...body, timeout_seconds: JOB_TIMEOUT_S }),
  });
  const submitted = (await res.json()) as { id?: string };
  if (res.status !== 202 || !submitted.id) throw new Error(`submit: ${res.status} ${JSON.stringify(submitted)}`);
  for (;;) {
    const job = (await (await fetch(`${base}/v1/jobs/${submitted.id}`, { headers })).json()) as any;
    if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return { job, ms: performance.now() - t0 };
    await new Promise((r) => setTimeout(r, 250));
  }
}

const MB = (n: number | undefined | null) => (typeof n === 'number' && n > 0 ? `${fmt(n / 1e6)} MB` : '-');
const pct = (r: number | undefined | null) => (typeof r === 'number' ? `-${fmt(r * 100)} %` : '-');

interface Row {
  name: string;
  original: number;
  safe?: number;
  multi?: number;
  reduction?: number;
  kind: string;
  best: string;
  smoke: string;
  checks: string;
  verifyMs: number;
  coldMs: number;
}

const rows: Row[] = [];
for (const c of OPTIMIZE_CORPUS.filter((x) => !only.length || only.includes(x.name))) {
  // Optimize first, on an emptied build cache, so its verify builds start cold (c and
  // needs-gcc share their apt step, and would otherwise share its cache); then the baseline:
  // the naive Dockerfile built with no_cache, as the user's own cold build would be.
  await runProcess(TOOLS.buildctl, ['--addr', buildkit, 'prune', '--all'], { timeoutMs: 300_000 });
  const opt = await run({ action: 'optimize', dockerfile_inline: c.dockerfile, verify: { commands: c.commands } });
  const cold = await run({
    action: 'build',
    dockerfile_inline: c.dockerfile,
    tags: [`${registry}/bench/corpus-${c.name}:cold`],
    no_cache: true,
  });
  if (cold.job.state !== 'succeeded') throw new Error(`${c.name}: cold build ${cold.job.state}: ${JSON.stringify(cold.job.error)}`);
  if (opt.job.state !== 'succeeded') {
    console.log(`${c.name}: optimize ${opt.job.state}: ${JSON.stringify(opt.job.error)}`);
    continue;
  }
  console.error(`${c.name}: optimize ${fmt(opt.ms / 1000)} s, cold build ${fmt(cold.ms / 1000)} s`);
  const result = opt.job.result;
  const v = result.verification ?? {};
  const rewrites: any[] = result.rewrites ?? [];
  const safe = rewrites.find((r) => r.kind === 'safe');
  // The smallest multi-stage rewrite that passed, else the smallest tried (it is shown as failed).
  const multis = rewrites.filter((r) => r.kind === 'multi-stage').sort((a, b) => (a.size_bytes ?? Infinity) - (b.size_bytes ?? Infinity));
  const multi = multis.find((r) => r.smoke_test === 'passed') ?? multis[0];
  // A base whose image failed the smoke test is never the best one, even when it is listed first.
  const best = (result.base_images ?? []).find((b: any) => b.smoke_test === 'passed');
  rows.push({
    name: c.name,
    original: v.original_size_bytes,
    safe: safe?.size_bytes,
    multi: multi?.size_bytes,
    reduction: v.reduction,
    kind: v.kind ?? '-',
    best: best ? `${best.ref} (${MB(best.size_bytes)})` : 'none passed',
    smoke: `${v.smoke_test ?? '-'}${multi && multi.smoke_test !== 'passed' ? ` (multi-stage ${multi.smoke_test})` : ''}`,
    checks: `${(v.checks ?? []).filter((k: any) => k.passed).length}/${(v.checks ?? []).length}`,
    verifyMs: v.verify_ms ?? opt.ms,
    coldMs: cold.ms,
  });
}

console.log(`bench/optimize-corpus: node ${process.version}, ${rows.length} cases`);
const header = [
  'case',
  'original',
  'safe rewrite',
  'multi-stage',
  'offered',
  'best base',
  'smoke',
  'checks',
  'verify',
  'cold build',
  'ratio',
];
console.log(header.join(' | '));
for (const r of rows) {
  console.log(
    [
      r.name,
      MB(r.original),
      MB(r.safe),
      MB(r.multi),
      `${r.kind} ${pct(r.reduction)}`,
      r.best,
      r.smoke,
      r.checks,
      `${fmt(r.verifyMs / 1000)} s`,
      `${fmt(r.coldMs / 1000)} s`,
      `${fmt(r.verifyMs / r.coldMs, 2)}x`,
    ].join(' | '),
  );
}
for (const c of OPTIMIZE_CORPUS) if (rows.some((r) => r.name === c.name)) console.log(`  ${c.name}: ${c.note}`);
const ratios = rows.map((r) => r.verifyMs / r.coldMs);
console.log(`verify / cold build: median ${fmt(median(ratios), 2)}x, max ${fmt(Math.max(...ratios), 2)}x (goal <= 3x)`);
await finish();
