import { RECONNECT_GRACE_MS, type SoakReport } from './soak.js';

const MiB = 1024 * 1024;
const counts = (c: Record<string, number>) =>
  Object.entries(c)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || '-';
const growth = (from: number, to: number) => `${to >= from ? '+' : ''}${(((to - from) / from) * 100).toFixed(1)} %`;
export const rssGrowth = (r: SoakReport) => ({
  api: (r.end.apiRss - r.start.apiRss) / r.start.apiRss,
  worker: (r.end.workerRss - r.start.workerRss) / r.start.workerRss,
});

/** The goals of issue 20: 0 lost, 0 5xx, RSS growth under 10 % after warm-up. */
export function goals(r: SoakReport): { name: string; met: boolean }[] {
  const rss = rssGrowth(r);
  return [
    { name: '0 lost (record gone, or still queued/running after the drain)', met: r.lost.length + r.unfinished.length === 0 },
    { name: '0 unexpected 5xx', met: r.fivexx.length === 0 },
    { name: 'RSS growth < 10 % after warm-up (api and worker-a)', met: rss.api < 0.1 && rss.worker < 0.1 },
  ];
}

/** The soak table, as `npm run soak` prints it and the CI test logs it. */
export function formatSoakReport(r: SoakReport): string {
  const row = (name: string, value: string | number, note = '') => `${name.padEnd(27)}${String(value).padEnd(12)}${note}`;
  const mem = (name: string, from: number, to: number, unit = MiB) => {
    const digits = unit === 1 ? 0 : 1;
    return `${name.padEnd(27)}${(from / unit).toFixed(digits).padEnd(14)}${(to / unit).toFixed(digits).padEnd(14)}${growth(from, to)}`;
  };
  const failedCount = r.states.failed ?? 0;
  const lines = [
    `soak: ${r.minutes} min of mixed load (warm-up ${r.warmupS.toFixed(0)} s) on stevedore api + 2 workers, node ${process.version}`,
    row('jobs submitted', r.submitted),
    row('  accepted (202)', r.accepted),
    row('  refused 503 in outage', r.refusedInOutage, 'not accepted, so not lost'),
    row(
      '  succeeded',
      r.states.succeeded ?? 0,
      counts(Object.fromEntries(Object.entries(r.byKind).map(([k, v]) => [k, v.succeeded ?? 0]))),
    ),
    row('  failed', failedCount, failedCount ? counts(r.failures) : ''),
    row('  lost', r.lost.length + r.unfinished.length, 'record gone, or still queued/running after the drain'),
    row('5xx (unexpected)', r.fivexx.length, 'every 5xx (and gRPC INTERNAL/UNAVAILABLE) outside the Redis restart'),
    row(
      '503 during outage',
      r.outage503,
      `REDIS_UNAVAILABLE while Redis was down (+${RECONNECT_GRACE_MS / 1000} s reconnect): the designed answer, not counted as 5xx`,
    ),
    row('streams broken in outage', r.streamBreaksInOutage, 'SSE/gRPC watchers that resumed after the restart'),
    row('other unexpected answers', r.other.length, '4xx to valid requests, no answer, streams broken outside the outage'),
    row('requests', r.requests),
    row('submit latency p50/p99', `${r.submitP50}/${r.submitP99} ms`, 'POST /v1/jobs answered 202'),
    row(
      'watchers',
      `${r.watchers.sawEnd}/${r.accepted}`,
      `saw the terminal event (SSE ${r.watchers.sse}, gRPC ${r.watchers.grpc}, polled ${r.watchers.poll})`,
    ),
    row('webhooks', `${r.webhooks.delivered}/${r.webhooks.expected}`, 'delivered to the local receiver'),
    row(
      'worker SIGKILL',
      `${r.faults.workerKillAtS.toFixed(0)} s`,
      `${r.faults.toolsAtKill} tool processes running; back ${r.faults.workerBackS.toFixed(1)} s later; ${r.faults.rerun} jobs run again`,
    ),
    row('Redis restart', `${r.faults.redisDownAtS.toFixed(0)} s`, `down ${r.faults.redisDownS.toFixed(1)} s (SIGTERM, same port and AOF)`),
    `${''.padEnd(27)}${`start (${r.start.atS.toFixed(0)} s)`.padEnd(14)}${`end (${r.end.atS.toFixed(0)} s)`.padEnd(14)}growth`,
    mem('api RSS (MiB)', r.start.apiRss, r.end.apiRss),
    mem('worker-a RSS (MiB)', r.start.workerRss, r.end.workerRss),
    mem('Redis used memory (MiB)', r.start.redisBytes, r.end.redisBytes),
    mem('Redis keys', r.start.redisKeys, r.end.redisKeys, 1),
    ...goals(r).map((g) => `goal: ${g.name}: ${g.met ? 'met' : 'NOT met'}`),
  ];
  for (const [title, list] of [
    ['unexpected 5xx', r.fivexx],
    ['other unexpected answers', r.other],
  ] as const)
    if (list.length)
      lines.push(
        `${title} (first 10):`,
        ...list.slice(0, 10).map((u) => `  ${(u.at / 1000).toFixed(1)} s ${u.what}: ${u.status} ${u.code ?? ''} ${u.message ?? ''}`),
      );
  if (r.failed.length)
    lines.push(
      'failed jobs:',
      ...r.failed.map(
        (f) =>
          `  ${f.id} ${f.kind}, submitted ${f.submittedAtS.toFixed(0)} s, ended ${f.finishedAtS.toFixed(0)} s after ${f.attempts} runs: ` +
          `${f.code}: ${f.message}`,
      ),
    );
  if (r.unfinished.length) lines.push(`unfinished: ${r.unfinished.map((j) => `${j.id} ${j.state}`).join(', ')}`);
  if (r.lost.length) lines.push(`lost: ${r.lost.join(', ')}`);
  if (r.webhooks.missing.length) lines.push(`webhooks missing for: ${r.webhooks.missing.slice(0, 10).join(', ')}`);
  if (r.watchers.mismatched.length) lines.push(`watchers that saw another end than the record: ${r.watchers.mismatched.join(', ')}`);
  return lines.join('\n');
}
