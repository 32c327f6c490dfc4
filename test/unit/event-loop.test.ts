import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { EventLoopMonitor, eventLoopDelayHistogram, type DelaySource } from '../../src/metrics/event-loop.js';

const MS = 1e6;

/** A stand-in for Node's IntervalHistogram: samples in ms (including the 10 ms timer interval), percentiles over them. */
class FakeSource implements DelaySource {
  samples: number[] = [];
  enable() {}
  disable() {}
  reset() {
    this.samples = [];
  }
  get count() {
    return this.samples.length;
  }
  get max() {
    return Math.max(0, ...this.samples) * MS;
  }
  percentile(p: number) {
    const sorted = [...this.samples].sort((a, b) => a - b);
    return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]! * MS;
  }
  get percentiles() {
    const sorted = [...this.samples].sort((a, b) => a - b);
    return new Map(sorted.map((v, i) => [((i + 1) / sorted.length) * 100, v * MS]));
  }
}

function setup() {
  const registry = new Registry();
  const source = new FakeSource();
  let clock = 1_000_000;
  const monitor = new EventLoopMonitor(eventLoopDelayHistogram(registry), source, () => clock);
  /** One second of loop: 99 timer firings on time and one `lateMs` late. */
  const second = (lateMs: number) => {
    source.samples.push(...Array.from({ length: 98 }, () => 10.2), 10 + lateMs, 10 + lateMs);
    clock += 1000;
    monitor.drain();
  };
  const metric = async () =>
    (await registry.getSingleMetric('stevedore_event_loop_delay_seconds')!.get()).values as {
      metricName?: string;
      labels: Record<string, unknown>;
      value: number;
    }[];
  return { monitor, second, metric };
}

describe('event loop monitor', () => {
  it('feeds every sample into stevedore_event_loop_delay_seconds, less the timer interval', async () => {
    const { second, metric } = setup();
    second(300);
    second(300);
    const values = await metric();
    const count = values.find((v) => v.metricName === 'stevedore_event_loop_delay_seconds_count')!.value;
    assert.equal(count, 200);
    const bucket = (le: number) => values.find((v) => v.metricName?.endsWith('_bucket') && v.labels.le === le)!.value;
    assert.equal(bucket(0.001), 196, 'the on-time firings read as about 0.2 ms');
    assert.equal(bucket(0.25), 196);
    assert.equal(bucket(0.5), 200, 'the 300 ms stalls');
    const sum = values.find((v) => v.metricName === 'stevedore_event_loop_delay_seconds_sum')!.value;
    assert.ok(Math.abs(sum - (196 * 0.0002 + 4 * 0.3)) < 1e-6, `sum ${sum}`);
  });

  it('is degraded only when the p99 stayed above the threshold for the whole window', () => {
    const { monitor, second } = setup();
    for (let i = 0; i < 4; i++) second(300);
    assert.equal(monitor.health(200, 5000).degraded, false, 'up for 4 s: the window is not covered yet');
    second(300);
    const bad = monitor.health(200, 5000);
    assert.equal(bad.degraded, true);
    assert.ok(Math.abs(bad.p99Ms - 300) < 1e-9, String(bad.p99Ms));
    second(100);
    assert.equal(monitor.health(200, 5000).degraded, false, 'one second under the threshold ends it');
    for (let i = 0; i < 4; i++) second(300);
    assert.equal(monitor.health(200, 5000).degraded, false, 'the good second is still in the window');
    second(300);
    assert.equal(monitor.health(200, 5000).degraded, true);
    assert.equal(monitor.health(400, 5000).degraded, false, 'under a higher threshold');
  });

  it('is not degraded on an idle loop', () => {
    const { monitor, second } = setup();
    for (let i = 0; i < 10; i++) second(0.1);
    const idle = monitor.health(200, 5000);
    assert.equal(idle.degraded, false);
    assert.ok(idle.p99Ms < 1, String(idle.p99Ms));
  });
});
