// bench/cancel: how long a cancel takes to stop a running RUN step (issue 21). A build
// whose RUN step sleeps with an argv no other process has (GNU sleep sums its arguments,
// so a random fraction makes it unique) is cancelled (POST /v1/jobs/{id}/cancel) as soon
// as /proc shows the process; the time is from the cancel request until /proc has no
// such process. Baseline, same run and same /proc polling: a plain local `sleep` of the
// same kind sent SIGKILL, until /proc no longer has it (what the polling itself costs).
// Run: npm run bench:cancel (own Redis, registry, buildkitd and serve; BENCH_CANCELS=20).
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { pidsWithArgv } from '../test/support/proc.js';
import { finish, fmt, median, percentile, startBuildStack } from './support.js';

const CANCELS = Number(process.env.BENCH_CANCELS ?? 20);
const TOKEN = 'bench-admin-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const uniqueSleep = () => ['sleep', '300', `0.${randomInt(1e8, 1e9)}`];

async function gone(argv: string[], t0: number, limitMs = 60_000): Promise<number> {
  while ((await pidsWithArgv(argv)).length) {
    if (performance.now() - t0 > limitMs) throw new Error(`${argv.join(' ')} still running after ${limitMs} ms`);
    await sleep(10);
  }
  return performance.now() - t0;
}

const { base } = await startBuildStack(TOKEN);
const cancels: number[] = [];
const states: string[] = [];
for (let i = 0; i < CANCELS; i++) {
  const argv = uniqueSleep();
  const res = await fetch(`${base}/v1/jobs`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ action: 'build', dockerfile_inline: `FROM debian:bookworm-slim\nRUN ${argv.join(' ')}\n`, no_cache: true }),
  });
  const { id } = (await res.json()) as { id: string };
  for (const deadline = Date.now() + 120_000; !(await pidsWithArgv(argv)).length; await sleep(20))
    if (Date.now() > deadline) throw new Error(`build ${id}: the RUN step never started`);
  const t0 = performance.now();
  const cancel = await fetch(`${base}/v1/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: auth.authorization } });
  if (cancel.status !== 202) throw new Error(`cancel of ${id}: ${cancel.status} ${await cancel.text()}`);
  cancels.push(await gone(argv, t0));
  for (;;) {
    const job = (await (await fetch(`${base}/v1/jobs/${id}`, { headers: auth })).json()) as { state: string };
    if (!['queued', 'running'].includes(job.state)) {
      states.push(job.state);
      break;
    }
    await sleep(50);
  }
}
const baseline: number[] = [];
for (let i = 0; i < CANCELS; i++) {
  const argv = uniqueSleep();
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  while (!(await pidsWithArgv(argv)).length) await sleep(5);
  const t0 = performance.now();
  child.kill('SIGKILL');
  baseline.push(await gone(argv, t0));
}
console.log(`bench/cancel: ${CANCELS} cancels of a running RUN step through stevedore, node ${process.version}`);
console.log('case                                      p50 ms   p90 ms   max ms');
const row = (name: string, v: number[]) =>
  console.log(`${name.padEnd(42)}${fmt(median(v), 0).padEnd(9)}${fmt(percentile(v, 90), 0).padEnd(9)}${fmt(Math.max(...v), 0)}`);
row('cancel request -> RUN process gone', cancels);
row('baseline: SIGKILL a local sleep -> gone', baseline);
console.log(`job states after cancel: ${[...new Set(states)].map((s) => `${s} ${states.filter((x) => x === s).length}`).join(', ')}`);
console.log(`runs (ms): [${cancels.map((v) => fmt(v, 0)).join(', ')}]`);
await finish();
