import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { JobReconciler, orphanError, orphanReason, type QueueSighting } from '../../src/jobs/job-reconciler.js';
import { keys } from '../../src/jobs/job-store.js';
import type { JobRecord, JobState } from '../../src/jobs/job-types.js';
import { isTerminal } from '../../src/jobs/job-types.js';

const NOW = Date.parse('2027-01-01T12:00:00.000Z');
const AFTER_MS = 120_000;
const LOCK_MS = 30_000;
const ago = (ms: number) => new Date(NOW - ms).toISOString();

/** The live index (a sorted set), the leader lease and the two lease scripts, in memory. */
function fakeRedis(leaseHolder?: string) {
  const live = new Map<string, number>();
  let lease = leaseHolder;
  const redis = {
    live,
    defineCommand: () => undefined,
    stvReconcileLease: (_k: string, token: string) => {
      if (lease && lease !== token) return Promise.resolve(0);
      lease = token;
      return Promise.resolve(1);
    },
    stvReconcileRelease: () => Promise.resolve(1),
    zrangebyscore: (key: string, _min: string, max: string, _limit: string, offset: number, count: number) => {
      assert.equal(key, keys.live);
      const ids = [...live].filter(([, s]) => s <= Number(max)).sort((a, b) => a[1] - b[1]);
      return Promise.resolve(ids.slice(offset, offset + count).map(([id]) => id));
    },
    zrem: (_key: string, ...ids: string[]) => Promise.resolve(ids.filter((id) => live.delete(id)).length),
  };
  return redis;
}

function setup(options: { leaseHolder?: string } = {}) {
  const redis = fakeRedis(options.leaseHolder);
  const records = new Map<string, JobRecord>();
  const queue = new Map<string, QueueSighting>();
  const transitions: { id: string; from: JobState[]; to: string; code: string }[] = [];
  const notified: string[] = [];
  const store = {
    get: (id: string) => Promise.resolve(records.get(id) ? structuredClone(records.get(id)) : undefined),
    transition: (id: string, from: JobState[] | '*', to: JobState | undefined, fields: Partial<JobRecord>) => {
      const rec = records.get(id)!;
      if (from === '*' || !from.includes(rec.state) || !to) return Promise.resolve({ applied: false, state: rec.state });
      Object.assign(rec, fields, { state: to });
      if (isTerminal(to)) redis.live.delete(id); // what TRANSITION_LUA does
      transitions.push({ id, from, to, code: fields.error?.code ?? '' });
      return Promise.resolve({ applied: true, state: to });
    },
  };
  const queues = { locate: (_a: string, id: string) => Promise.resolve(queue.get(id) ?? { state: 'unknown', locked: false }) };
  const notifier = { finished: (id: string) => Promise.resolve(void notified.push(id)) };
  const logger = { log: () => undefined, warn: () => undefined };
  const reconciler = new JobReconciler(redis as unknown as Redis, store, queues, notifier, logger, {
    intervalMs: 30_000,
    afterMs: AFTER_MS,
    lockMs: LOCK_MS,
  });
  const add = (id: string, state: JobState, createdAgoMs: number, startedAgoMs?: number) => {
    records.set(id, {
      id,
      tenant: 't1',
      action: 'build',
      state,
      created_at: ago(createdAgoMs),
      started_at: startedAgoMs === undefined ? null : ago(startedAgoMs),
    } as JobRecord);
    redis.live.set(id, NOW - createdAgoMs);
  };
  return { reconciler, records, queue, transitions, notified, add, live: redis.live };
}

describe('orphanReason: what BullMQ says of a live record', () => {
  const cases: [JobState, QueueSighting, string | undefined][] = [
    ['queued', { state: 'unknown', locked: false }, 'never_queued'],
    ['queued', { state: 'prioritized', locked: false }, undefined],
    ['queued', { state: 'waiting', locked: false }, undefined],
    ['queued', { state: 'delayed', locked: false }, undefined],
    ['queued', { state: 'active', locked: true }, undefined],
    ['queued', { state: 'failed', locked: false }, 'queue_finished'],
    ['running', { state: 'active', locked: true }, undefined],
    ['running', { state: 'waiting', locked: false }, undefined], // stalled, handed back: the runner recovers it
    ['running', { state: 'unknown', locked: false }, 'no_queue_entry'],
    ['running', { state: 'completed', locked: false }, 'queue_finished'],
    ['running', { state: 'active', locked: false }, 'lock_lost'],
    ['succeeded', { state: 'unknown', locked: false }, undefined],
  ];
  for (const [state, sighting, expected] of cases)
    it(`${state} + ${sighting.state}${sighting.locked ? ' (locked)' : ''} → ${expected ?? 'left alone'}`, () =>
      assert.equal(orphanReason(state, sighting), expected));

  it('fails never-queued jobs with QUEUE_UNAVAILABLE and lost ones with WORKER_LOST', () => {
    const rec = { state: 'queued' } as JobRecord;
    assert.equal(orphanError('never_queued', rec, { state: 'unknown', locked: false }).code, 'QUEUE_UNAVAILABLE');
    for (const reason of ['no_queue_entry', 'queue_finished', 'lock_lost'] as const)
      assert.equal(orphanError(reason, rec, { state: 'failed', locked: false }).code, 'WORKER_LOST');
  });
});

describe('JobReconciler', () => {
  it('fails a queued record with no queue entry on the second pass, notifies, and drops it from the live index', async () => {
    const t = setup();
    t.add('a', 'queued', AFTER_MS + 1_000);
    assert.deepEqual(await t.reconciler.pass(NOW), {}, 'the first sighting only makes it a suspect');
    assert.deepEqual(t.transitions, []);
    assert.deepEqual(await t.reconciler.pass(NOW + 30_000), { never_queued: 1 });
    assert.deepEqual(t.transitions, [{ id: 'a', from: ['queued'], to: 'failed', code: 'QUEUE_UNAVAILABLE' }]);
    assert.deepEqual(t.notified, ['a']);
    assert.equal(t.records.get('a')!.error!.details.reconciled, 'never_queued');
    assert.equal(t.live.has('a'), false);
  });

  it('never judges a record younger than the bound (a slow queue add), nor a job started within it', async () => {
    const t = setup();
    t.add('young', 'queued', AFTER_MS - 1_000);
    t.add('restarted', 'running', 10 * AFTER_MS, 1_000);
    t.queue.set('restarted', { state: 'active', locked: false });
    for (let i = 0; i < 3; i++) assert.deepEqual(await t.reconciler.pass(NOW), {});
    assert.deepEqual(t.transitions, []);
  });

  it('leaves a long-running job with its lock, and queued jobs waiting their turn, alone', async () => {
    const t = setup();
    t.add('long', 'running', 10 * AFTER_MS, 9 * AFTER_MS);
    t.queue.set('long', { state: 'active', locked: true });
    t.add('backlog', 'queued', 10 * AFTER_MS);
    t.queue.set('backlog', { state: 'prioritized', locked: false });
    for (let i = 0; i < 3; i++) assert.deepEqual(await t.reconciler.pass(NOW + i * 30_000), {});
    assert.deepEqual(t.transitions, []);
    assert.equal(t.live.size, 2);
  });

  it('does not fail a suspect that a worker took (or a cancel finished) before the next pass', async () => {
    const t = setup();
    t.add('taken', 'queued', AFTER_MS + 1_000);
    t.add('cancelled', 'queued', AFTER_MS + 1_000);
    await t.reconciler.pass(NOW);
    t.queue.set('taken', { state: 'active', locked: true }); // the slow add landed and a worker took it
    t.records.get('cancelled')!.state = 'cancelled';
    assert.deepEqual(await t.reconciler.pass(NOW + 30_000), {});
    assert.deepEqual(t.transitions, []);
    assert.equal(t.live.has('cancelled'), false, 'a terminal record left in the index is dropped');
  });

  it('fails a running job BullMQ no longer has, or holds with nobody renewing its lock, with WORKER_LOST', async () => {
    const t = setup();
    t.add('gone', 'running', 3 * AFTER_MS, 2 * AFTER_MS);
    t.add('stuck', 'running', 3 * AFTER_MS, 2 * AFTER_MS);
    t.queue.set('stuck', { state: 'active', locked: false });
    t.add('bull-failed', 'running', 3 * AFTER_MS, 2 * AFTER_MS);
    t.queue.set('bull-failed', { state: 'failed', locked: false });
    await t.reconciler.pass(NOW);
    assert.deepEqual(await t.reconciler.pass(NOW + 30_000), { no_queue_entry: 1, queue_finished: 1 });
    // Lockless but active: BullMQ's stalled check gets two lock periods to hand it back first.
    assert.deepEqual(await t.reconciler.pass(NOW + 60_000), {});
    assert.deepEqual(await t.reconciler.pass(NOW + 90_000), { lock_lost: 1 });
    assert.deepEqual(
      new Set(t.transitions.map((x) => `${x.id}:${x.from.join()}:${x.code}`)),
      new Set(['gone:running:WORKER_LOST', 'stuck:running:WORKER_LOST', 'bull-failed:running:WORKER_LOST']),
    );
  });

  it('goes through every candidate in batches, also when failures shrink the index under it', async () => {
    const t = setup();
    for (let i = 0; i < 450; i++) t.add(`q${String(i).padStart(3, '0')}`, 'queued', AFTER_MS + 10_000 + i);
    await t.reconciler.pass(NOW);
    assert.deepEqual(await t.reconciler.pass(NOW + 30_000), { never_queued: 450 });
    assert.equal(t.live.size, 0);
  });

  it('gives BullMQ back its turn when the job it held without a lock is handed back (a stalled job recovered)', async () => {
    const t = setup();
    t.add('stalled', 'running', 3 * AFTER_MS, 2 * AFTER_MS);
    t.queue.set('stalled', { state: 'active', locked: false });
    await t.reconciler.pass(NOW);
    await t.reconciler.pass(NOW + 30_000);
    t.queue.set('stalled', { state: 'waiting', locked: false }); // the stalled check moved it back
    for (let i = 2; i < 6; i++) assert.deepEqual(await t.reconciler.pass(NOW + i * 30_000), {});
    assert.deepEqual(t.transitions, []);
  });

  it('does nothing while another process holds the lease', async () => {
    const t = setup({ leaseHolder: 'someone-else' });
    t.add('a', 'queued', AFTER_MS + 1_000);
    await t.reconciler.pass(NOW);
    assert.deepEqual(await t.reconciler.pass(NOW + 30_000), {});
    assert.deepEqual(t.transitions, []);
  });
});
