import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Job } from 'bullmq';
import { CatalogueRecorder, catalogueWrites } from '../../src/catalogue/catalogue-recorder.js';
import type { CatalogueUpdate } from '../../src/catalogue/catalogue-record.js';
import { JobFailure } from '../../src/jobs/job-failure.js';
import type { JobRecord } from '../../src/jobs/job-types.js';
import { createJobRunner, type RunnerDeps } from '../../src/workers/job-runner.js';
import type { ActionProcessor } from '../../src/workers/processor.js';

const D = `sha256:${'a'.repeat(64)}`;
const signJob = (): JobRecord =>
  ({
    id: 'j1',
    tenant: 'team-a',
    action: 'sign',
    state: 'succeeded',
    request: { action: 'sign', image: '127.0.0.1:5000/team/app:1' },
    result: { signed: { reference: `127.0.0.1:5000/team/app@${D}`, digest: D, key: 'release' } },
    error: null,
    finished_at: '2026-12-03T10:00:00.000Z',
  }) as unknown as JobRecord;

const failures = async () => (await catalogueWrites.get()).values.find((v) => v.labels.outcome === 'failed')?.value ?? 0;

describe('CatalogueRecorder', () => {
  it('writes the job’s updates', async () => {
    const applied: CatalogueUpdate[] = [];
    await new CatalogueRecorder({ apply: async (u) => void applied.push(u) }, { warn: () => undefined }).record(signJob());
    assert.equal(applied.length, 1);
    assert.equal(applied[0]!.digest, D);
  });

  it('never throws: a failed or hanging write is logged and counted', async () => {
    const warnings: string[] = [];
    const logger = { warn: (m: string) => void warnings.push(m) };
    const before = await failures();
    await new CatalogueRecorder({ apply: async () => Promise.reject(new Error('redis down')) }, logger).record(signJob());
    await new CatalogueRecorder({ apply: () => new Promise(() => undefined) }, logger, 50).record(signJob());
    assert.equal((await failures()) - before, 2);
    assert.match(warnings[0]!, /job j1 \(sign\): redis down/);
    assert.match(warnings[1]!, /timed out after 50 ms/);
  });
});

/** The job runner with in-memory stand-ins for its store, scheduler and notifier. */
function runner(process: ActionProcessor<'sign'>['process'], recorder: RunnerDeps['recorder']) {
  const record = { ...signJob(), state: 'queued', result: null, finished_at: null, timeout_seconds: 60 } as JobRecord;
  const transitions: string[] = [];
  const store = {
    get: async () => ({ ...record }),
    appendEvent: async () => undefined,
    transition: async (_id: string, _from: string[], to: string) => {
      transitions.push(to);
      record.state = to as JobRecord['state'];
      return { applied: true };
    },
  };
  const deps = {
    store,
    fair: { acquire: async () => true, release: async () => undefined },
    notifier: { finished: async () => undefined },
    logger: { warn: () => undefined, error: () => undefined },
    shutdown: new AbortController().signal,
    recorder,
  } as unknown as RunnerDeps;
  const run = createJobRunner({ action: 'sign', process }, deps);
  const bullJob = { data: { jobId: 'j1' }, stalledCounter: 0, attemptsMade: 0, opts: { attempts: 1 } } as unknown as Job;
  return { run: () => run(bullJob), transitions };
}

describe('the job runner and the catalogue', () => {
  it('hands the finished job (request, result, finish time) to the recorder; a throwing recorder leaves it succeeded', async () => {
    const seen: JobRecord[] = [];
    const result = { signed: { reference: `127.0.0.1:5000/team/app@${D}`, digest: D, key: 'release' } };
    const { run, transitions } = runner(async () => result, {
      record: async (job) => {
        seen.push(job);
        throw new Error('catalogue exploded');
      },
    });
    await run(); // resolves: the job is not failed or retried
    assert.deepEqual(transitions, ['running', 'succeeded']);
    assert.equal(seen[0]!.state, 'succeeded');
    assert.deepEqual((seen[0]!.result as Record<string, unknown>).signed, result.signed);
    assert.ok(seen[0]!.finished_at);
  });

  it('tells the recorder of a finally failed job too (a gated build is recorded from its error)', async () => {
    const seen: JobRecord[] = [];
    const { run, transitions } = runner(
      async () => {
        throw new JobFailure('POLICY_FAILED', 'policy gate failed', false, { digest: D });
      },
      { record: async (job) => void seen.push(job) },
    );
    await assert.rejects(run());
    assert.deepEqual(transitions, ['running', 'failed']);
    assert.equal(seen[0]!.state, 'failed');
    assert.equal(seen[0]!.error?.code, 'POLICY_FAILED');
  });
});
