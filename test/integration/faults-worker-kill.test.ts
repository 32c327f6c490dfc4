import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { startWorker, until, type Child } from '../support/processes.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const LOCK_SECONDS = 4;

/**
 * SIGKILL of `stevedore worker` (its whole process group: buildctl too) in the middle of
 * builds, again and again. Every job must end in a terminal state after a new worker
 * starts: run again once (succeeded, a `recovered` state event) or, when its worker is
 * lost a second time, failed with WORKER_LOST — never left `running`, never lost.
 */
describe('worker killed mid-build, repeatedly', () => {
  let stack: Stack;
  let server: any;
  let worker: Child | undefined;
  const workerEnv = () => ({
    REDIS_URL: stack.redisUrl,
    BUILDKIT_HOST: stack.buildkitd!.address,
    STEVEDORE_REGISTRY_MIRROR: stack.registry.address,
    STEVEDORE_JOB_LOCK_SECONDS: String(LOCK_SECONDS),
    STEVEDORE_CONCURRENCY: 'build=2',
  });
  const job = async (id: string) => (await request(server).get(`/v1/jobs/${id}`).set(AUTH).expect(200)).body;
  const events = async (id: string) =>
    (await request(server).get(`/v1/jobs/${id}/events?follow=false`).set(AUTH).expect(200)).body.items as {
      type: string;
      data: Record<string, unknown>;
    }[];
  /** Running, and its RUN step has started: killing now interrupts real work. */
  const runningStep = (id: string, runs: number) =>
    until(
      `job ${id} run ${runs} to be in its RUN step`,
      async () => {
        const log = await events(id);
        const starts = log.filter((e) => e.type === 'state' && e.data.state === 'running').length;
        return (
          starts >= runs &&
          log
            .slice(log.findLastIndex((e) => e.type === 'state' && e.data.state === 'running'))
            .some((e) => e.type === 'step' && String((e.data.step as { name?: string } | undefined)?.name ?? '').includes('RUN sleep'))
        );
      },
      90_000,
      100,
    );

  before(async () => {
    stack = await startStack({ buildkit: true, roles: { api: true, worker: false } });
    server = stack.app.getHttpServer();
    worker = await startWorker(workerEnv());
  });
  after(async () => {
    worker?.kill('SIGKILL');
    await stack?.stop();
  });

  it('recovers or fails every job after 10 kills, losing none', async () => {
    const run = Date.now();
    // Kills per job: 1 = rerun to success, 2 = WORKER_LOST.
    const plan = [1, 1, 2, 1, 1, 2, 1, 1];
    const jobs: { id: string; kills: number }[] = [];
    let kills = 0;
    for (const [i, planned] of plan.entries()) {
      const id = (
        await request(server)
          .post('/v1/jobs')
          .set(AUTH)
          .send({
            action: 'build',
            dockerfile_inline: `FROM debian:bookworm-slim\nRUN sleep 4 && echo killed-${run}-${i}\n`,
            no_cache: true,
          })
          .expect(202)
      ).body.id as string;
      jobs.push({ id, kills: planned });
      for (let k = 1; k <= planned; k++) {
        await runningStep(id, k);
        worker!.kill('SIGKILL');
        await worker!.exited;
        kills++;
        worker = await startWorker(workerEnv());
      }
      // The rerun must not be hit by the next job's kill (that would be a second loss).
      await until(`job ${id} to end`, async () => ['succeeded', 'failed'].includes((await job(id)).state), 120_000, 250);
    }
    const finals = await until(
      'every job to end',
      async () => {
        const all = await Promise.all(jobs.map(async (j) => ({ ...j, record: await job(j.id) })));
        return all.every((j) => ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(j.record.state)) ? all : undefined;
      },
      180_000,
      500,
    );
    const lost = finals.filter((j) => !j.record || j.record.state === 'running' || j.record.state === 'queued').length;
    console.log(
      `faults: ${kills} SIGKILLs of the worker mid-build, ${jobs.length} jobs, ${lost} ` +
        `lost; ${finals.filter((j) => j.record.state === 'succeeded').length} succeeded after a ` +
        `rerun, ${finals.filter((j) => j.record.error?.code === 'WORKER_LOST').length} failed WORKER_LOST`,
    );
    assert.ok(kills >= 10);
    assert.equal(lost, 0);
    for (const j of finals) {
      if (j.kills === 1) {
        assert.equal(j.record.state, 'succeeded', `${j.id}: ${JSON.stringify(j.record.error)}`);
        assert.equal(j.record.attempts, 2);
        assert.ok((await events(j.id)).some((e) => e.type === 'state' && e.data.state === 'running' && e.data.recovered === true));
      } else {
        assert.equal(j.record.state, 'failed');
        assert.equal(j.record.error.code, 'WORKER_LOST');
      }
    }
  });
});
