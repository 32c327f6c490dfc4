import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Histogram, type Registry } from 'prom-client';

/**
 * Watches this process's event loop. REST, gRPC, SSE and every in-process worker share
 * the one loop, so a handler that computes for a second stalls all of them at once; this
 * is what says so: `stevedore_event_loop_delay_seconds` on /metrics, and `/readyz`'s
 * `event_loop` check, which is degraded while the delay's p99 stays above a threshold.
 *
 * The samples come from `perf_hooks.monitorEventLoopDelay` (a timer every RESOLUTION_MS
 * inside libuv, recording the time between two firings; the resolution itself is taken
 * off, so an idle loop reads about 0, not 10 ms). Every SLICE_MS its histogram is drained into
 * the Prometheus histogram and into a short history of slices (p99, max) that readiness
 * reads. Node's histogram hands out percentiles, not samples, so each slice's samples are
 * rebuilt from its percentile curve (the value at the top of each step, as many times as
 * that step holds): counts are exact, values rounded up to the curve's next step.
 */

/** Delay as it would look in a histogram; only what this file reads of Node's IntervalHistogram. */
export interface DelaySource {
  enable(): void;
  disable(): void;
  reset(): void;
  readonly count: number;
  readonly max: number;
  readonly percentiles: Map<number, number>;
  percentile(p: number): number;
}

export interface LoopSlice {
  /** Epoch ms the slice began and ended. */
  start: number;
  end: number;
  /** Delay p99 and max in ms (0 when the slice has no sample). */
  p99Ms: number;
  maxMs: number;
}

export interface LoopHealth {
  /** True when every slice of the last `windowMs` had a p99 over the threshold, and they cover the window. */
  degraded: boolean;
  /** Worst p99 and max of the slices in the window, in ms. */
  p99Ms: number;
  maxMs: number;
  thresholdMs: number;
  windowMs: number;
}

const RESOLUTION_MS = 10;
const SLICE_MS = 1000;
/** Slices kept: the longest window readiness may ask about (STEVEDORE_EVENT_LOOP_DEGRADED_WINDOW_SECONDS ≤ 600). */
export const MAX_WINDOW_MS = 600_000;
const NS_PER_S = 1e9;
/** A sample in ns as the delay beyond the timer's own interval, in seconds. */
const late = (ns: number) => Math.max(0, ns / NS_PER_S - RESOLUTION_MS / 1000);

export class EventLoopMonitor {
  private readonly slices: LoopSlice[] = [];
  private sliceStart: number;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly histogram: Histogram,
    private readonly source: DelaySource = monitorEventLoopDelay({ resolution: RESOLUTION_MS }),
    private readonly now: () => number = Date.now,
  ) {
    this.sliceStart = now();
  }

  start(): this {
    if (this.timer) return this;
    this.source.enable();
    this.sliceStart = this.now();
    // unref: watching the loop never keeps a process alive that is otherwise done.
    this.timer = setInterval(() => this.drain(), SLICE_MS).unref();
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.source.disable();
  }

  /** Moves what the source recorded since the last drain into the metric and the slice history. */
  drain(): void {
    const end = this.now();
    const count = this.source.count;
    const slice: LoopSlice = { start: this.sliceStart, end, p99Ms: 0, maxMs: 0 };
    if (count > 0) {
      slice.p99Ms = late(this.source.percentile(99)) * 1000;
      slice.maxMs = late(this.source.max) * 1000;
      let observed = 0;
      for (const [percent, valueNs] of this.source.percentiles) {
        const upTo = Math.min(count, Math.round((percent / 100) * count));
        for (; observed < upTo; observed++) this.histogram.observe(late(valueNs));
      }
      // Rounding can leave the last few samples of the curve unobserved: they are its maximum.
      for (; observed < count; observed++) this.histogram.observe(late(this.source.max));
    }
    this.source.reset();
    this.sliceStart = end;
    this.slices.push(slice);
    while (this.slices.length && this.slices[0]!.end < end - MAX_WINDOW_MS) this.slices.shift();
  }

  /**
   * Whether the loop delay p99 stayed above `thresholdMs` for the last `windowMs`: every
   * slice ending in the window over it, and the slices reaching back to its start (a
   * process up for less than the window, or a single bad second, is not degraded).
   */
  health(thresholdMs: number, windowMs: number): LoopHealth {
    const now = this.now();
    const from = now - windowMs;
    const recent = this.slices.filter((s) => s.end > from);
    const p99Ms = Math.max(0, ...recent.map((s) => s.p99Ms));
    const maxMs = Math.max(0, ...recent.map((s) => s.maxMs));
    const covered = recent.length > 0 && recent[0]!.start <= from;
    const degraded = covered && recent.every((s) => s.p99Ms > thresholdMs);
    return { degraded, p99Ms, maxMs, thresholdMs, windowMs };
  }
}

/** `stevedore_event_loop_delay_seconds`, registered in `registry`. */
export function eventLoopDelayHistogram(registry: Registry): Histogram {
  return new Histogram({
    name: 'stevedore_event_loop_delay_seconds',
    help:
      'How late the event loop ran a 10 ms timer (perf_hooks.monitorEventLoopDelay), sampled continuously: ' +
      'REST, gRPC, SSE and in-process workers all wait this long.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
}
