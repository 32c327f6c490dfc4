import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatSoakReport, rssGrowth } from '../support/soak-report.js';
import { runSoak } from '../support/soak.js';

/**
 * The soak of `npm run soak` (bench/soak.ts), shortened to 2 minutes for CI: a mixed load
 * of builds, scans, inspects and optimizes, followed by SSE streams, gRPC Watches and
 * polling, half of them with webhooks, on stevedore split into an api and two workers,
 * with a worker SIGKILL and a Redis restart in the middle. A 503 REDIS_UNAVAILABLE while
 * Redis is down on purpose is the designed answer and counted apart; any other 5xx fails.
 */
describe('soak (2 minutes, worker SIGKILL and Redis restart included)', () => {
  it('loses no job, answers no unexpected 5xx, and ends every accepted job', { timeout: 300_000 }, async () => {
    const report = await runSoak({ minutes: 2, drainMs: 60_000, log: (line) => console.log(line) });
    console.log(formatSoakReport(report));

    assert.ok(report.accepted >= 30, `only ${report.accepted} jobs accepted`);
    for (const kind of ['build', 'scan', 'inspect', 'optimize'])
      assert.ok((report.byKind[kind]?.succeeded ?? 0) > 0, `no ${kind} succeeded: ${JSON.stringify(report.byKind)}`);
    // The faults happened and were seen: the outage answered the load with 503s.
    assert.ok(report.faults.workerBackS > 0);
    assert.ok(report.outage503 > 0, 'no request met the Redis restart');

    assert.deepEqual(report.lost, [], 'records gone');
    assert.deepEqual(report.unfinished, [], 'accepted jobs not terminal after the drain');
    assert.deepEqual(report.fivexx, [], 'unexpected 5xx');
    assert.deepEqual(report.other, [], '4xx to valid requests, requests without an answer, streams broken outside the outage');
    // A job may end failed (WORKER_LOST, say) without being lost: the table lists each failed
    // job with its code and message, for a person to judge; the test holds the goals.
    assert.equal(report.watchers.sawEnd, report.accepted, 'every SSE/gRPC/polling watcher saw its job end');
    assert.deepEqual(report.watchers.mismatched, [], 'a watcher saw another end than the record holds');
    assert.deepEqual(report.webhooks.missing, [], 'webhooks not delivered');

    // RSS growth is reported, not asserted, here: two minutes is mostly warm-up for a Node
    // process (JIT tiers, V8 heap sizing, LRU caches and connection pools still filling), so
    // the figure says little about leaks and would make the test flaky on a shared machine.
    // The 15-minute `npm run soak` holds it to < 10 %.
    const rss = rssGrowth(report);
    console.log(
      `soak: RSS growth after warm-up (reported only): api ${(rss.api * 100).toFixed(1)} %, worker ${(rss.worker * 100).toFixed(1)} %`,
    );
  });
});
