import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ExceptionStore, VulnerabilityException } from '../../src/exceptions/exception-store.js';
import { ExceptionSweeper } from '../../src/exceptions/exception-sweeper.js';
import type { TenantEvents, TenantEventType } from '../../src/webhooks/tenant-events.js';

/** The store's sweep-side contract over memory: a due queue whose claim succeeds once. */
function memoryStore(records: VulnerabilityException[], tenant = 'team-a') {
  const byId = new Map(records.map((r) => [r.id, { ...r }]));
  const due = new Map(records.map((r) => [r.id, Date.parse(r.expires)]));
  const store = {
    due: async (now: Date, limit: number) =>
      [...due.entries()]
        .filter(([, at]) => at <= now.getTime())
        .sort((a, b) => a[1] - b[1])
        .slice(0, limit)
        .map(([id, expiresMs]) => ({ tenant, id, expiresMs })),
    claim: async (_t: string, id: string) => due.delete(id),
    unclaim: async (_t: string, id: string, at: number) => void due.set(id, at),
    get: async (_t: string, id: string) => byId.get(id),
    markNotified: async (_t: string, id: string, at: Date) => void (byId.get(id)!.expired_notified_at = at.toISOString()),
  };
  return { store: store as unknown as ExceptionStore, byId, due };
}

class RecordingEvents implements TenantEvents {
  readonly published: { tenant: string; type: TenantEventType; data: Record<string, unknown> }[] = [];
  failNext = 0;
  async publish(tenant: string, type: TenantEventType, data: Record<string, unknown>): Promise<void> {
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('queue down');
    }
    this.published.push({ tenant, type, data });
  }
}

const exception = (id: string, expires: string): VulnerabilityException => ({
  id,
  vulnerability_id: 'CVE-2021-23337',
  scope: { repository: 'team/*' },
  reason: 'not reachable',
  owner: 'alice',
  expires,
  created_at: '2026-01-01T00:00:00.000Z',
  source: 'api',
});

describe('exception expiry sweeper', () => {
  it('publishes exception.expired once per expired exception, marks it, and leaves the others', async () => {
    const { store, byId } = memoryStore([exception('a', '2026-05-01T00:00:00Z'), exception('b', '2026-07-01T00:00:00Z')]);
    const events = new RecordingEvents();
    const a = new ExceptionSweeper(store, events, { intervalMs: 1000, batch: 10 });
    const b = new ExceptionSweeper(store, events, { intervalMs: 1000, batch: 10 });
    const now = new Date('2026-06-01T00:00:00Z');
    // Two processes sweeping at once: the claim lets one of them announce it.
    const counts = await Promise.all([a.sweep(now), b.sweep(now), a.sweep(now)]);
    assert.equal(
      counts.reduce((x, y) => x + y),
      1,
    );
    assert.deepEqual(events.published, [
      {
        tenant: 'team-a',
        type: 'exception.expired',
        data: {
          exception_id: 'a',
          vulnerability_id: 'CVE-2021-23337',
          scope: { repository: 'team/*' },
          reason: 'not reachable',
          owner: 'alice',
          expires: '2026-05-01T00:00:00Z',
        },
      },
    ]);
    assert.equal(byId.get('a')!.expired_notified_at, now.toISOString());
    assert.equal(byId.get('b')!.expired_notified_at, undefined);
    assert.equal(await a.sweep(new Date('2026-08-01T00:00:00Z')), 1, 'b, once it expired');
    assert.equal(await a.sweep(new Date('2026-09-01T00:00:00Z')), 0);
  });

  it('bounds the work of one sweep and puts an entry back when its event could not be queued', async () => {
    const { store, due } = memoryStore(Array.from({ length: 5 }, (_, i) => exception(`e${i}`, `2026-05-0${i + 1}T00:00:00Z`)));
    const events = new RecordingEvents();
    const sweeper = new ExceptionSweeper(store, events, { intervalMs: 1000, batch: 2 });
    const now = new Date('2026-06-01T00:00:00Z');
    assert.equal(await sweeper.sweep(now), 2);
    events.failNext = 1;
    await assert.rejects(sweeper.sweep(now), /queue down/);
    assert.ok(due.has('e2'), 'still due after the failed publish');
    assert.equal(await sweeper.sweep(now), 2);
    assert.equal(await sweeper.sweep(now), 1);
    assert.deepEqual(
      events.published.map((e) => e.data.exception_id),
      ['e0', 'e1', 'e2', 'e3', 'e4'],
    );
  });

  it('runs on an unref’d timer that stop() clears', async () => {
    const { store } = memoryStore([exception('a', '2020-01-01T00:00:00Z')]);
    const events = new RecordingEvents();
    const sweeper = new ExceptionSweeper(store, events, { intervalMs: 10, batch: 10 });
    sweeper.start();
    for (let i = 0; i < 200 && !events.published.length; i++) await new Promise((r) => setTimeout(r, 10));
    await sweeper.stop();
    assert.equal(events.published.length, 1);
  });
});
