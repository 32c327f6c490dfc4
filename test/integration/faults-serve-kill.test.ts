import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  api,
  eventsOf,
  groupMembers,
  jobOf,
  roleEnv,
  spawnRole,
  TERMINAL,
  waitTerminal,
  waitUntil,
  type GroupProcess,
} from '../support/fault-helpers.js';
import { RedisServer } from '../support/processes.js';
import { startBuildkitd, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from '../support/services.js';
import { freePort } from '../support/stack.js';

const LOCK_SECONDS = 4;

/**
 * SIGKILL of the all-in-one `stevedore serve` (its whole process group: the buildctl of
 * the running build too) while a build runs and more jobs wait behind it, then `serve`
 * started again on the same Redis (a real redis-server with an append-only file). Every
 * accepted job must reach a terminal state — the interrupted build run again (succeeded,
 * with a `recovered` event) or failed WORKER_LOST after its recovery run; the waiting ones
 * simply run — none may stay queued or running, and the API must take new work.
 */
describe('serve killed mid-build with jobs queued, started again on the same Redis', () => {
  let redis: RedisServer;
  let registry: StartedRegistry;
  let buildkitd: StartedBuildkitd;
  let serve: GroupProcess | undefined;
  const stateDir = mkdtempSync(join(tmpdir(), 'stv-serve-kill-'));

  /** `serve` on fresh ports, Redis, buildkitd and the registry given (so it embeds none); resolves with its base URL once ready. */
  const startServe = async (name: string): Promise<string> => {
    const [http, grpc] = [await freePort(), await freePort()];
    serve = spawnRole(
      name,
      'serve',
      roleEnv({
        REDIS_URL: redis.url,
        BUILDKIT_HOST: buildkitd.address,
        STEVEDORE_REGISTRY_MIRROR: registry.address,
        STEVEDORE_STATE_DIR: stateDir,
        STEVEDORE_HTTP_HOST: '127.0.0.1',
        STEVEDORE_HTTP_PORT: String(http),
        STEVEDORE_GRPC_PORT: String(grpc),
        STEVEDORE_JOB_LOCK_SECONDS: String(LOCK_SECONDS),
        // One build at a time: the others are still queued when serve dies.
        STEVEDORE_CONCURRENCY: 'build=1',
      }),
    );
    const base = `http://127.0.0.1:${http}`;
    const started = serve;
    await waitUntil(
      `${name} to be ready`,
      async () => {
        if (started.child.exitCode !== null) throw new Error(`${name} exited:\n${started.output().slice(-3000)}`);
        return (await fetch(`${base}/readyz`)).status === 200 ? true : undefined;
      },
      120_000,
      async () => started.output().slice(-3000),
      300,
    );
    return base;
  };

  before(async () => {
    redis = new RedisServer(await freePort());
    await redis.start();
    registry = await startSeededRegistry();
    buildkitd = await startBuildkitd(registry.address);
  });
  after(async () => {
    await serve?.kill().catch(() => undefined);
    await buildkitd?.stop();
    await registry?.container.stop();
    await redis?.kill();
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('ends every accepted job after the restart and takes new work', { timeout: 480_000 }, async () => {
    const run = Date.now();
    const first = await startServe('serve-1');
    const submit = async (body: object) => {
      const res = await api(first, 'POST', '/v1/jobs', body);
      assert.equal(res.status, 202, JSON.stringify(res.body));
      return res.body.id as string;
    };
    const build = (tag: string, seconds: number) => ({
      action: 'build',
      dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep ${seconds} && echo ${tag}-${run}\n`,
      provenance: false,
    });
    const interrupted = await submit(build('interrupted', 8));
    const queued = [await submit(build('queued-1', 1)), await submit(build('queued-2', 1))];
    const inspect = await submit({ action: 'inspect', image: `${registry.address}/library/debian:bookworm-slim`, platform: 'linux/amd64' });

    // Killed while the first build's RUN step runs (a buildctl in serve's group), the others waiting.
    await waitUntil(
      `job ${interrupted} in its RUN step`,
      async () =>
        (await eventsOf(first, interrupted)).some((e) => e.type === 'step' && /RUN sleep/.test(String(e.data.step?.name ?? ''))) &&
        groupMembers(serve!.pid).length > 1
          ? true
          : undefined,
      120_000,
      async () => (await jobOf(first, interrupted)).state,
    );
    const before = await Promise.all([interrupted, ...queued].map((id) => jobOf(first, id)));
    assert.deepEqual(
      before.map((j) => j.state),
      ['running', 'queued', 'queued'],
    );
    const killed = serve!;
    await killed.kill(); // SIGKILL to the group; resolves once no member of it runs
    assert.notEqual((await killed.exited).signal, null, 'serve was killed, not stopped');
    assert.equal((await api(first, 'GET', '/healthz', undefined, 2_000)).status, 0, 'the killed serve no longer answers');

    // The same Redis, state dir and daemons; fresh ports (a restarted container gets its own address too).
    const second = await startServe('serve-2');
    const accepted = [interrupted, ...queued, inspect];
    const finals = await Promise.all(accepted.map((id) => waitTerminal(second, id, 180_000)));
    const stuck = finals.filter((j) => !TERMINAL.includes(j.state));
    assert.deepEqual(stuck, [], 'a job left queued or running');

    const [rerun, ...rest] = finals;
    const rerunEvents = await eventsOf(second, interrupted);
    const recovered = rerunEvents.some((e) => e.type === 'state' && e.data.state === 'running' && e.data.recovered === true);
    const outcome = `${rerun.state}${rerun.error ? ` (${rerun.error.code})` : ''} after ${rerun.attempts} runs`;
    console.log(
      `faults: serve SIGKILLed with 1 build running and ${queued.length} queued; after the restart the interrupted build ` +
        `${outcome}, the others ${rest.map((j) => j.state).join(', ')}`,
    );
    if (rerun.state === 'succeeded') {
      assert.ok(recovered, 'the interrupted build ran again with a recovered state event');
      assert.equal(rerun.attempts, 2);
    } else {
      assert.equal(rerun.state, 'failed', JSON.stringify(rerun));
      assert.equal(rerun.error.code, 'WORKER_LOST');
    }
    for (const job of rest) assert.equal(job.state, 'succeeded', `${job.id}: ${JSON.stringify(job.error)}`);

    // And the API answers and works again.
    assert.equal((await api(second, 'GET', '/readyz')).status, 200);
    const fresh = await api(second, 'POST', '/v1/jobs', {
      action: 'inspect',
      image: `${registry.address}/library/debian:bookworm-slim`,
      platform: 'linux/amd64',
    });
    assert.equal(fresh.status, 202, JSON.stringify(fresh.body));
    assert.equal((await waitTerminal(second, fresh.body.id, 60_000)).state, 'succeeded');
    await serve!.stop();
  });
});
