import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { get } from 'node:http';
import { setPriority } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { StartedTestContainer } from 'testcontainers';
import { testRedisUrl } from '../support/env.js';
import { pushBigImage } from '../support/big-image.js';
import { api, roleEnv, sleep, spawnRole, waitTerminal, waitUntil, type GroupProcess } from '../support/fault-helpers.js';
import { startBuildkitd, startRedis, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { freePort, TOKEN } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * The heaviest legitimate requests at once against `stevedore serve` (api and workers in
 * one process, one event loop): a 500 MiB context upload, an optimize of a ~300 MB image
 * and 200 live event streams, while /healthz is asked every 50 ms over a new connection.
 * Every answer must come within 100 ms. The clients doing the heavy sending and reading
 * are child processes of their own (at a lower CPU priority: on this 2-core machine they
 * stand in for clients on other machines), so this process's loop is free to time the
 * probes; its own loop delay is printed beside them, so a slow probe can be told apart
 * from a starved prober. Each probe goes at the same moment to a bare node:http server (a
 * process of its own, at the service's priority): when that one is slow too, the machine
 * was (on a 2-core machine shared with other work, it can be: see the printed figures).
 */

const PROBE_EVERY_MS = 50;
const PROBE_LIMIT_MS = 100;
/** No probe, whatever the machine does, may take this long: that would be a stall, not noise. */
const STALL_MS = 1000;
const UPLOAD_FILES = 2000;
const UPLOAD_FILE_BYTES = 256 * 1024; // 2000 × 256 KiB = 500 MiB
const STREAMS = 200;
const LOAD_CHILD = fileURLToPath(new URL('../support/load-child.js', import.meta.url));

interface Probe {
  at: number;
  ms: number;
  status: number;
  /** The same probe, at the same moment, of a bare node:http server (a process of its own, same priority): the machine's share. */
  controlMs: number;
  /** How late this process woke up for the probe (its own event loop's delay). */
  proberLateMs: number;
}

/** One GET over a fresh connection; ms until the whole answer is read (5 s at most). */
function probeOnce(url: string): Promise<{ ms: number; status: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = get(url, { agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - started, status: res.statusCode ?? 0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ ms: performance.now() - started, status: 0 }));
  });
}

/** The control: a bare node:http server of its own; resolves with its port and a stop function. */
async function startControl(): Promise<{ port: number; stop(): void }> {
  const child = spawn(process.execPath, [LOAD_CHILD, 'control'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`control server exited ${code}`)));
  });
  return { port, stop: () => child.kill('SIGKILL') };
}

/** A load-child.js run, niced; resolves with the JSON line it prints. */
function loadChild(args: string[]): Promise<any> {
  const child = spawn(process.execPath, [LOAD_CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    setPriority(child.pid!, 10);
  } catch {
    // not allowed here: runs at normal priority
  }
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch {
        reject(new Error(`load child ${args[0]} exited ${code}: ${err.slice(-2000)}`));
      }
    }),
  );
}

/** The cumulative buckets of stevedore_event_loop_delay_seconds from a /metrics text. */
function delayBuckets(text: string): Map<number, number> {
  const buckets = new Map<number, number>();
  for (const m of text.matchAll(/^stevedore_event_loop_delay_seconds_bucket\{le="([^"]+)"\} (\d+)/gm))
    buckets.set(m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2]));
  return buckets;
}

/** histogram_quantile over the samples between two scrapes (linear within a bucket, as Prometheus does). */
function quantile(q: number, before: Map<number, number>, after: Map<number, number>): { value: number; samples: number } {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((le) => after.get(le)! - (before.get(le) ?? 0));
  const total = counts.at(-1)!;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! < rank) continue;
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    const upper = bounds[i]!;
    if (upper === Infinity) return { value: lower, samples: total };
    const below = i === 0 ? 0 : counts[i - 1]!;
    return { value: lower + ((upper - lower) * (rank - below)) / Math.max(1, counts[i]! - below), samples: total };
  }
  return { value: NaN, samples: total };
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.ceil((p / 100) * values.length) - 1)]!;

describe('event loop under the heaviest legitimate requests (serve)', () => {
  let registry: StartedRegistry;
  let redis: StartedTestContainer;
  let buildkitd: StartedBuildkitd;
  let serve: GroupProcess;
  let base: string;
  const bigImage = () => `${registry.address}/load/big:1`;

  before(async () => {
    registry = await startSeededRegistry();
    redis = await startRedis();
    buildkitd = await startBuildkitd(registry.address);
    await pushBigImage(buildkitd.address, bigImage());
    const [http, grpc] = [await freePort(), await freePort()];
    base = `http://127.0.0.1:${http}`;
    serve = spawnRole(
      'serve',
      'serve',
      roleEnv({
        STEVEDORE_STATE_DIR: tempDir('stv-loop-state-'),
        STEVEDORE_HTTP_PORT: String(http),
        STEVEDORE_GRPC_PORT: String(grpc),
        REDIS_URL: testRedisUrl(redis.getMappedPort(6379)),
        BUILDKIT_HOST: buildkitd.address,
        STEVEDORE_REGISTRY_MIRROR: registry.address,
        STEVEDORE_STREAMS_PER_KEY: '0',
        STEVEDORE_STREAMS_PER_TENANT: '0',
        STEVEDORE_SSE_HEARTBEAT_SECONDS: '1',
      }),
    );
    await serve.waitForOutput(/stevedore serve ready/, 180_000);
  });

  after(async () => {
    await serve?.stop(10_000);
    await buildkitd?.stop();
    await redis?.stop();
    await registry?.container.stop();
  });

  it('answers /healthz within 100 ms throughout a 500 MiB upload, a 300 MB optimize and 200 event streams', async () => {
    // The stream target: a build that waits until it is cancelled at the end.
    const target = await api(base, 'POST', '/v1/jobs', {
      action: 'build',
      dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep 900 # ${Date.now()}\n`,
      no_cache: true,
    });
    assert.equal(target.status, 202, JSON.stringify(target.body));
    const beforeMetrics = delayBuckets((await api(base, 'GET', '/metrics')).body as string);

    // The prober: this process does nothing else while it runs.
    const probes: Probe[] = [];
    const ready: { status: number; degraded: boolean; p99: number }[] = [];
    const own = monitorEventLoopDelay({ resolution: 10 });
    own.enable();
    let probing = true;
    const control = await startControl();
    const prober = (async () => {
      let due = performance.now();
      while (probing) {
        const proberLateMs = Math.max(0, performance.now() - due);
        const [{ ms, status }, { ms: controlMs }] = await Promise.all([
          probeOnce(`${base}/healthz`),
          probeOnce(`http://127.0.0.1:${control.port}/healthz`),
        ]);
        probes.push({ at: Date.now(), ms, status, controlMs, proberLateMs });
        due += PROBE_EVERY_MS;
        const wait = due - performance.now();
        if (wait > 0) await sleep(wait);
        else due = performance.now();
      }
    })();
    const readiness = (async () => {
      while (probing) {
        const res = await api(base, 'GET', '/readyz', undefined, 10_000);
        const loop = res.body?.details?.event_loop ?? res.body?.error?.details?.details?.event_loop;
        ready.push({ status: res.status, degraded: res.body?.status === 'degraded', p99: loop?.p99_ms ?? NaN });
        await sleep(5000); // about as often as a kubelet asks (each check runs buildctl)
      }
    })();

    const started = Date.now();
    const streams = loadChild(['sse', `${base}/v1/jobs/${target.body.id}/events`, TOKEN, String(STREAMS)]);
    await sleep(2000);
    const upload = loadChild(['upload', base, TOKEN, String(UPLOAD_FILES), String(UPLOAD_FILE_BYTES)]);
    const optimizeId = (await api(base, 'POST', '/v1/jobs', { action: 'optimize', image: bigImage() })).body.id as string;
    const optimized = await waitTerminal(base, optimizeId, 600_000);
    console.log(`event loop: optimize ended at +${Date.now() - started} ms`);
    const uploaded = await upload;
    console.log(`event loop: upload ended at +${Date.now() - started} ms`);
    await api(base, 'POST', `/v1/jobs/${target.body.id}/cancel`);
    const streamed = await streams;
    await waitUntil(
      'the build to end',
      async () => ((await api(base, 'GET', `/v1/jobs/${target.body.id}`)).body.state === 'cancelled' ? true : undefined),
      60_000,
    );
    probing = false;
    await Promise.all([prober, readiness]);
    own.disable();
    control.stop();
    const heavySeconds = (Date.now() - started) / 1000;
    const afterMetrics = delayBuckets((await api(base, 'GET', '/metrics')).body as string);

    const times = probes.map((p) => p.ms);
    const controls = probes.map((p) => p.controlMs);
    const slow = probes.filter((p) => p.ms >= PROBE_LIMIT_MS || p.status !== 200);
    // The service's own share of a probe: its time beyond the bare control server's at the
    // same moment. On a 2-core machine shared with other work (CI, other suites) the
    // control alone has taken 80-184 ms; an absolute 100 ms would test the machine.
    const ownShare = probes.filter((p) => p.status !== 200 || p.ms - p.controlMs >= PROBE_LIMIT_MS || p.ms >= STALL_MS);
    const loopP99 = quantile(0.99, beforeMetrics, afterMetrics);
    const loopMax = quantile(1, beforeMetrics, afterMetrics);
    console.log(
      `event loop: ${heavySeconds.toFixed(0)} s of heavy load (upload ${uploaded.ms} ms, optimize ${optimized.state}, ` +
        `${STREAMS} streams ${streamed.ms} ms); ${probes.length} /healthz probes: p50 ${percentile(times, 50).toFixed(1)} ms, ` +
        `p99 ${percentile(times, 99).toFixed(1)} ms, max ${Math.max(...times).toFixed(1)} ms, ` +
        `${slow.length} at or over ${PROBE_LIMIT_MS} ms; the bare control server beside it: ` +
        `p99 ${percentile(controls, 99).toFixed(1)} ms, max ${Math.max(...controls).toFixed(1)} ms, ` +
        `${controls.filter((ms) => ms >= PROBE_LIMIT_MS).length} at or over ${PROBE_LIMIT_MS} ms`,
    );
    console.log(
      `event loop: service stevedore_event_loop_delay_seconds over the heavy phase: p99 ${(loopP99.value * 1000).toFixed(1)} ms, ` +
        `max bucket ≤ ${(loopMax.value * 1000).toFixed(0)} ms (${loopP99.samples} samples); /readyz event_loop p99 (30 s window) ` +
        `max ${Math.max(...ready.map((r) => r.p99))} ms, degraded ${ready.filter((r) => r.degraded).length}/${ready.length}; ` +
        `prober's own loop delay p99 ${(own.percentile(99) / 1e6 - 10).toFixed(1)} ms, max ${(own.max / 1e6 - 10).toFixed(1)} ms`,
    );
    for (const p of slow.slice(0, 40))
      console.log(
        `event loop: slow probe at +${p.at - started} ms: ${p.ms.toFixed(1)} ms ` +
          `(status ${p.status}; control ${p.controlMs.toFixed(1)} ms; prober ${p.proberLateMs.toFixed(1)} ms late)`,
      );

    // The heavy requests did their work.
    assert.equal(uploaded.status, 201, JSON.stringify(uploaded));
    assert.ok(uploaded.bytes >= 500 * 1024 * 1024, String(uploaded.bytes));
    assert.equal(optimized.state, 'succeeded', JSON.stringify(optimized.error));
    assert.ok(optimized.result.image_analysis.uncompressed_bytes > 250e6, String(optimized.result.image_analysis.uncompressed_bytes));
    assert.equal(streamed.results.length, STREAMS);
    for (const s of streamed.results) {
      assert.equal(s.status, 200, JSON.stringify(s));
      assert.ok(s.types.includes('state') && s.heartbeats > 0, JSON.stringify(s));
    }
    // The probes ran all along (one per 50 ms, give or take their own time) and were all fast.
    assert.ok(probes.length >= (heavySeconds * 1000) / PROBE_EVERY_MS / 2, `${probes.length} probes in ${heavySeconds} s`);
    assert.ok(loopP99.samples > heavySeconds * 50, `the service's loop was sampled (${loopP99.samples})`);
    assert.ok(loopP99.value * 1000 < PROBE_LIMIT_MS, `the service's event-loop delay p99 ${(loopP99.value * 1000).toFixed(1)} ms`);
    assert.deepEqual(
      ownShare.map((p) => `${p.ms.toFixed(0)} ms (control ${p.controlMs.toFixed(0)} ms, status ${p.status})`),
      [],
      `probes ${PROBE_LIMIT_MS} ms or more beyond the bare control server probed at the same moment, or over ${STALL_MS} ms`,
    );
  });
});
