import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../../src/engines/process-runner.js';
import { TOOLS } from '../support/env.js';
import { api, eventsOf, jobOf, roleEnv, sleep, startWorker, waitTerminal, waitUntil, type GroupProcess } from '../support/fault-helpers.js';
import { startStack, freePort, type Stack } from '../support/stack.js';
import { Receiver } from '../support/webhook-receiver.js';

const LOCK_SECONDS = 4;
/**
 * Far longer than the lock, so it lapses inside Redis while the worker holding it cannot
 * know; and long enough that an unfenced first run finishes its RUN step (RUN_SECONDS)
 * and pushes during the freeze (the registry and buildkitd do not need Redis) — which is
 * what makes this test fail without fencing.
 */
const FREEZE_MS = 20_000;
const RUN_SECONDS = 8;
const KEY_PASSWORD = 'freeze-test-key-password';

/**
 * Redis frozen (not dead: `docker pause`, so connections stay open and commands wait)
 * for longer than the job lock while a tagged, signed build with a webhook runs on one
 * of two workers. The lock lapses; once Redis answers, BullMQ's stalled check hands the
 * job out again. Without fencing the first worker would carry on and both would push,
 * sign and notify. Required: exactly one push of the tag, one signature, one webhook,
 * and the job's events say that run 1 stopped (LEASE_LOST) and run 2 took over.
 */
describe('Redis frozen longer than the job lock mid-build', () => {
  let stack: Stack;
  let receiver: Receiver;
  let paused = false;
  const keysDir = mkdtempSync(join(tmpdir(), 'stv-freeze-keys-'));
  const workers: GroupProcess[] = [];

  before(async () => {
    stack = await startStack({
      buildkit: true,
      roles: { api: true, worker: false },
      registryAccessLog: true,
      overrides: { webhooks: { allowedHosts: ['127.0.0.1'], attempts: 4, retryBaseMs: 200, timeoutMs: 2_000 } },
    });
    receiver = new Receiver(await freePort(), '/hooks/freeze');
    await receiver.up();
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], {
      env: { COSIGN_PASSWORD: KEY_PASSWORD },
    });
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({ keys: [{ name: 'release', key: join(keysDir, 'release.key'), password_env: 'STV_FREEZE_KEY_PASSWORD' }] }),
    );
    const env = roleEnv({
      REDIS_URL: stack.redisUrl,
      BUILDKIT_HOST: stack.buildkitd!.address,
      STEVEDORE_REGISTRY_MIRROR: stack.registry.address,
      STEVEDORE_JOB_LOCK_SECONDS: String(LOCK_SECONDS),
      STEVEDORE_CONCURRENCY: 'build=1',
      STEVEDORE_SIGNING_KEYS_FILE: keysFile,
      STEVEDORE_SIGNING_OFFLINE: 'true',
      STV_FREEZE_KEY_PASSWORD: KEY_PASSWORD,
      // Only the signature: the SBOM stage (Trivy) adds nothing to what this test checks.
      STEVEDORE_DEFAULT_PIPELINE: 'sign',
      STEVEDORE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      STEVEDORE_WEBHOOK_RETRY_BASE_MS: '200',
    });
    for (const name of ['worker-a', 'worker-b']) workers.push(await startWorker(name, env));
  });

  after(async () => {
    if (paused) execFileSync('docker', ['unpause', stack.redis.getId()]);
    for (const w of workers) await w.kill().catch(() => undefined);
    await receiver?.down();
    await stack?.stop();
    rmSync(keysDir, { recursive: true, force: true });
  });

  it('runs the build to one push, one signature and one webhook; run 1 stops when its lease lapses', async () => {
    const base = stack.base;
    const run = `${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const repository = `team/fenced-${run}`;
    const tag = `${stack.registry.address}/${repository}:1`;
    const submitted = await api(base, 'POST', '/v1/jobs', {
      action: 'build',
      // Each run's image differs (the time it was built), so a second run's push is a second
      // manifest PUT: identical content would be skipped by the pusher and hide it.
      dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep ${RUN_SECONDS} && date +%s%N > /built-at && echo fenced-${run}\n`,
      tags: [tag],
      no_cache: true,
      provenance: false,
      callback_url: receiver.urlFor('/hooks/freeze'),
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const id = submitted.body.id as string;
    await waitUntil(
      `job ${id} in its RUN step`,
      async () =>
        (await eventsOf(base, id)).some(
          (e) => e.type === 'step' && e.data.step?.state === 'started' && /sleep /.test(e.data.step?.name ?? ''),
        )
          ? true
          : undefined,
      90_000,
      async () => (await jobOf(base, id)).state,
    );

    const frozeAt = Date.now();
    execFileSync('docker', ['pause', stack.redis.getId()]);
    paused = true;
    await sleep(FREEZE_MS);
    execFileSync('docker', ['unpause', stack.redis.getId()]);
    paused = false;

    const job = await waitTerminal(base, id, 240_000);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    // Room for a second run that should not exist to show itself (push, sign, webhook).
    await sleep(LOCK_SECONDS * 3 * 1000);

    const events = await eventsOf(base, id);
    const starts = events.filter((e) => e.type === 'state' && e.data.state === 'running');
    const lost = events.filter((e) => e.type === 'warning' && e.data.code === 'LEASE_LOST');
    const registryLog = execFileSync('docker', ['logs', stack.registry.container.getId()], { encoding: 'utf8', stdio: 'pipe' });
    const puts = [...`${registryLog}`.matchAll(/"PUT \/v2\/([^ ]+)\/manifests\/([^ ?]+)[^"]*" (\d+)/g)]
      .filter((m) => m[1] === repository)
      .map((m) => ({ ref: m[2]!, status: m[3]! }));
    const tagPuts = puts.filter((p) => p.ref === '1');
    // cosign v3 pushes each signature as a bundle manifest by digest (an OCI referrer), then
    // updates the referrers tag `sha256-<image digest>`: a second signing adds a second bundle.
    const signaturePuts = puts.filter((p) => p.ref.startsWith('sha256:') && p.ref !== job.result.build.digest);
    const hooks = receiver.received.filter((r) => r.path === '/hooks/freeze');
    const hookIds = new Set(hooks.map((h) => h.headers['webhook-id']));
    console.log(
      `fencing: ${starts.length} runs, ${lost.length} LEASE_LOST; registry manifest PUTs of the tag ${tagPuts.length}, ` +
        `of signatures ${signaturePuts.length}; webhooks ${hookIds.size} (${hooks.length} deliveries)\n` +
        `  PUTs: ${JSON.stringify(puts)}\n` +
        `  events: ${events
          .filter((e) => e.type !== 'log')
          .map((e) => `${new Date(e.at).toISOString().slice(11, 23)} ${e.type} ${JSON.stringify(e.data).slice(0, 140)}`)
          .join('\n    ')}\n` +
        `  freeze: ${new Date(frozeAt).toISOString().slice(11, 23)} for ${FREEZE_MS} ms`,
    );
    assert.equal(starts.length, 2, 'run 1, then run 2 after the lock lapsed');
    assert.equal(starts[1]!.data.recovered, true);
    assert.ok(lost.length >= 1, `run 1 says it stopped: ${JSON.stringify(events.filter((e) => e.type === 'warning'))}`);
    assert.equal(job.attempts, 2);
    assert.equal(tagPuts.length, 1, 'one push of the tag');
    assert.ok(job.result.signed, 'signed');
    assert.equal(signaturePuts.length, 1, 'one signature');
    assert.equal(hookIds.size, 1, 'one webhook');
  });
});
