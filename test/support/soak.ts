import { api, sleep, TERMINAL, waitUntil } from './fault-helpers.js';
import { SoakLoad } from './soak-load.js';
import { SoakStack } from './soak-stack.js';
import { OutageWindows, Tally, type Unexpected } from './soak-tally.js';

/**
 * The soak: a bounded mixed load (soak-load.ts) against stevedore split into an api and
 * two workers (soak-stack.ts) for `minutes`, with a worker SIGKILL and a Redis restart
 * in the middle, then a drain and a check of every accepted job's record. `npm run soak`
 * (bench/soak.ts) and test/integration/soak.test.ts both run this.
 */

export interface SoakOptions {
  minutes: number;
  /** How long, after the load stops, the jobs still running may take to end. */
  drainMs?: number;
  maxInFlight?: number;
  log?: (line: string) => void;
}

export interface Snapshot {
  /** Seconds since the load started. */
  atS: number;
  apiRss: number;
  /** The worker that is never killed (the other one is a fresh process after its restart). */
  workerRss: number;
  redisBytes: number;
  redisKeys: number;
}

export interface SoakReport {
  minutes: number;
  warmupS: number;
  submitted: number;
  accepted: number;
  refusedInOutage: number;
  /** Final record states, overall and per kind of job. */
  states: Record<string, number>;
  byKind: Record<string, Record<string, number>>;
  /** Error codes of the failed jobs, and the jobs themselves. */
  failures: Record<string, number>;
  failed: { id: string; kind: string; attempts: number; code: string; message: string; submittedAtS: number; finishedAtS: number }[];
  /** Accepted jobs whose record is gone. */
  lost: string[];
  /** Accepted jobs still queued or running after the drain. */
  unfinished: { id: string; state: string }[];
  fivexx: Unexpected[];
  other: Unexpected[];
  outage503: number;
  streamBreaksInOutage: number;
  requests: number;
  submitP50: number;
  submitP99: number;
  watchers: { sse: number; grpc: number; poll: number; sawEnd: number; mismatched: string[] };
  webhooks: { expected: number; delivered: number; missing: string[] };
  faults: {
    workerKillAtS: number;
    toolsAtKill: number;
    workerBackS: number;
    /** Jobs that ran more than once (attempts > 1): the killed worker's, recovered by another. */
    rerun: number;
    redisDownAtS: number;
    redisDownS: number;
  };
  start: Snapshot;
  end: Snapshot;
}

/** Redis down this long in the restart; and how long after it answers again a 503 still counts as the outage's. */
const REDIS_DOWN_MS = 3_000;
export const RECONNECT_GRACE_MS = 5_000;

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const log = options.log ?? (() => undefined);
  const stack = new SoakStack();
  try {
    log('soak: starting redis, registry, buildkitd, api and 2 workers');
    await stack.start();
    return await soakOn(stack, options, log);
  } finally {
    await stack.stop();
  }
}

async function soakOn(stack: SoakStack, options: SoakOptions, log: (line: string) => void): Promise<SoakReport> {
  const durationMs = options.minutes * 60_000;
  // Warm-up (JIT, connection pools, caches filling) is excluded from the RSS comparison.
  const warmupMs = Math.min(120_000, Math.max(15_000, durationMs * 0.15));
  const outages = new OutageWindows();
  const tally = new Tally(outages);
  const load = new SoakLoad(
    { base: stack.base, grpcAddress: stack.grpcAddress, registry: stack.registry, callbackUrl: stack.receiver.url },
    tally,
    options.maxInFlight,
  );
  const t0 = tally.t0;
  const sinceStart = () => (Date.now() - t0) / 1000;
  const until = async (at: number) => void (Date.now() < at && (await sleep(at - Date.now())));
  const snapshot = async (): Promise<Snapshot> => {
    const redis = await stack.redisMemory();
    return {
      atS: sinceStart(),
      apiRss: SoakStack.rss(stack.api!.pid),
      workerRss: SoakStack.rss(stack.workers[0]!.pid),
      redisBytes: redis.usedBytes,
      redisKeys: redis.keys,
    };
  };

  const running = load.runUntil(t0 + durationMs);
  await until(t0 + warmupMs);
  const start = await snapshot();
  log(`soak: warm-up done at ${start.atS.toFixed(0)} s, ${tally.accepted} jobs accepted so far`);

  // The worker SIGKILL, at 30 % of the measured span: when a tool of worker-b runs (a build step), if one does within 20 s.
  const span = durationMs - warmupMs;
  await until(t0 + warmupMs + span * 0.3);
  const toolsAtKill = await waitUntil('worker-b to run a tool', async () => stack.toolsRunning(1) || undefined, 20_000).catch(() => 0);
  const workerKillAtS = sinceStart();
  await stack.killWorker(1);
  await sleep(2_000);
  await stack.restartWorker(1);
  const workerBackS = sinceStart() - workerKillAtS;
  log(`soak: worker-b SIGKILLed at ${workerKillAtS.toFixed(0)} s (${toolsAtKill} tool processes), back after ${workerBackS.toFixed(1)} s`);

  // The Redis restart, at 60 %: stopped (SIGTERM) and started again on the same port and AOF.
  await until(t0 + warmupMs + span * 0.6);
  const redisDownAtS = sinceStart();
  const outage = outages.begin();
  await stack.restartRedis(REDIS_DOWN_MS);
  outage.end(RECONNECT_GRACE_MS);
  const redisDownS = sinceStart() - redisDownAtS;
  log(`soak: Redis restarted at ${redisDownAtS.toFixed(0)} s (down ${redisDownS.toFixed(1)} s)`);

  await running;
  const end = await snapshot();
  log(`soak: load stopped at ${end.atS.toFixed(0)} s; ${load.inFlight} jobs still to finish`);
  await load.drain(options.drainMs ?? 180_000);

  const records = await finalRecords(
    stack.base,
    tally,
    load.jobs.map((j) => j.id),
  );
  const webhooks = await webhookDeliveries(
    stack,
    load.jobs.filter((j) => j.callback && TERMINAL.includes(records.get(j.id)?.state)).map((j) => j.id),
  );
  const states: Record<string, number> = {};
  const byKind: Record<string, Record<string, number>> = {};
  const failures: Record<string, number> = {};
  for (const job of load.jobs) {
    const record = records.get(job.id);
    const state = record?.state ?? 'gone';
    states[state] = (states[state] ?? 0) + 1;
    const kind = (byKind[job.kind.replace('-tag', '')] ??= {});
    kind[state] = (kind[state] ?? 0) + 1;
    if (state === 'failed') failures[record.error?.code ?? '?'] = (failures[record.error?.code ?? '?'] ?? 0) + 1;
  }
  return {
    minutes: options.minutes,
    warmupS: warmupMs / 1000,
    submitted: tally.submitted,
    accepted: tally.accepted,
    refusedInOutage: tally.refusedInOutage,
    states,
    byKind,
    failures,
    failed: load.jobs
      .map((j) => ({ job: j, record: records.get(j.id) }))
      .filter(({ record }) => record?.state === 'failed')
      .map(({ job, record }) => ({
        id: job.id,
        kind: job.kind,
        attempts: record.attempts,
        code: record.error?.code,
        message: String(record.error?.message ?? '').slice(0, 300),
        submittedAtS: (Date.parse(record.created_at) - t0) / 1000,
        finishedAtS: (Date.parse(record.finished_at) - t0) / 1000,
      })),
    lost: load.jobs.filter((j) => !records.get(j.id)).map((j) => j.id),
    unfinished: load.jobs
      .map((j) => ({ id: j.id, state: records.get(j.id)?.state as string }))
      .filter((j) => j.state && !TERMINAL.includes(j.state)),
    fivexx: tally.fivexx,
    other: tally.other,
    outage503: tally.outage503,
    streamBreaksInOutage: tally.streamBreaksInOutage,
    requests: tally.requests,
    submitP50: percentile(tally.submitMs, 50),
    submitP99: percentile(tally.submitMs, 99),
    watchers: {
      sse: load.jobs.filter((j) => j.watcher === 'sse').length,
      grpc: load.jobs.filter((j) => j.watcher === 'grpc').length,
      poll: load.jobs.filter((j) => j.watcher === 'poll').length,
      sawEnd: load.jobs.filter((j) => j.seen).length,
      mismatched: load.jobs.filter((j) => j.seen && j.seen !== records.get(j.id)?.state).map((j) => j.id),
    },
    webhooks,
    faults: {
      workerKillAtS,
      toolsAtKill,
      workerBackS,
      rerun: load.jobs.filter((j) => (records.get(j.id)?.attempts ?? 1) > 1).length,
      redisDownAtS,
      redisDownS,
    },
    start,
    end,
  };
}

/** Every accepted job's record after the drain (a 404 leaves it out: lost). */
async function finalRecords(base: string, tally: Tally, ids: string[]): Promise<Map<string, any>> {
  const records = new Map<string, any>();
  const queue = [...ids];
  const reader = async () => {
    for (let id = queue.shift(); id; id = queue.shift()) {
      const startedAt = Date.now();
      const res = await api(base, 'GET', `/v1/jobs/${id}`);
      if (tally.answer('GET /v1/jobs/{id} (final)', res, startedAt, 200) === 'ok') records.set(id, res.body);
    }
  };
  await Promise.all([reader(), reader(), reader(), reader()]);
  return records;
}

/** Which of these jobs' webhooks reached the receiver (waiting up to 30 s for retries still due). */
async function webhookDeliveries(stack: SoakStack, ids: string[]): Promise<SoakReport['webhooks']> {
  const missing = () => ids.filter((id) => !stack.receiver.withId(`msg_${id}`).length);
  await waitUntil('webhooks to arrive', async () => (missing().length ? undefined : true), 30_000).catch(() => undefined);
  const left = missing();
  return { expected: ids.length, delivered: ids.length - left.length, missing: left };
}
