import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import { LeaseWatch } from '../../src/workers/lease-watch.js';

describe('LeaseWatch', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date', 'setInterval'], now: 1_000_000 }));
  afterEach(() => mock.timers.reset());

  it('stops a job whose lock was not renewed for 3/4 of the lock, and only that job', () => {
    const leases = new LeaseWatch(4_000);
    const lost: string[] = [];
    leases.watch('a', (why) => lost.push(`a: ${why}`));
    leases.watch('b', (why) => lost.push(`b: ${why}`));
    for (let t = 0; t < 10; t++) {
      mock.timers.tick(500);
      leases.renewed(['b']); // b's renewals keep coming; a's stopped (Redis unreachable for a)
    }
    assert.equal(lost.length, 1);
    assert.match(lost[0]!, /^a: its lock was not renewed for [34] s/);
  });

  it('keeps a job whose renewals arrive, and stops it at once when a renewal fails', () => {
    const leases = new LeaseWatch(4_000);
    const lost: string[] = [];
    leases.watch('a', (why) => lost.push(why));
    for (let t = 0; t < 20; t++) {
      mock.timers.tick(1_000);
      leases.renewed(['a']);
    }
    assert.deepEqual(lost, []);
    leases.failed(['a']);
    leases.failed(['a']); // told once only
    assert.equal(lost.length, 1);
    assert.match(lost[0]!, /could not be renewed/);
  });

  it('forgets a job once unwatched: nothing fires for a finished job', () => {
    const leases = new LeaseWatch(4_000);
    const lost: string[] = [];
    const unwatch = leases.watch('a', (why) => lost.push(why));
    unwatch();
    mock.timers.tick(60_000);
    leases.failed(['a']);
    assert.deepEqual(lost, []);
  });
});
