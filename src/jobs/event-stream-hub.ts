import type { OnApplicationShutdown } from '@nestjs/common';
import type { Redis } from 'ioredis';
import { MAX_EVENT_ID } from './ids.js';
import { keys } from './job-store.js';

interface Waiter {
  /** An event came while the follower was not waiting: its next wait returns at once. */
  pending: boolean;
  wake?: (woken: boolean) => void;
}

/** A follower's handle: wait for news on its job's stream, then read it itself. */
export interface StreamWatch {
  /** Resolves true when the stream may have new events, false after `ms` without any. */
  wait(ms: number): Promise<boolean>;
  close(): void;
}

const NOTHING = () => undefined;

/**
 * Live event streams of one process share ONE blocking Redis connection: a loop runs
 * `XREAD BLOCK` over every followed job's stream at once and wakes the followers of a
 * stream that grew; each follower then reads its own events with a plain XRANGE on the
 * shared command connection. (Before, every SSE or Watch stream duplicated the
 * connection: N streams, N Redis clients.) When a follower starts on a stream the
 * loop is not reading yet, the blocked read is cut short with CLIENT UNBLOCK from the
 * command connection, so a new stream's first live event is not held up by the block.
 */
export class EventStreamHub implements OnApplicationShutdown {
  private reader?: Redis;
  private readerId?: number;
  private readonly streams = new Map<string, { cursor: string; waiters: Set<Waiter> }>();
  private running = false;
  private closed = false;
  /** Bumped for every newly followed stream; the loop notes the one it is reading with. */
  private generation = 0;
  private readingGeneration = 0;

  constructor(
    private readonly redis: Redis,
    private readonly blockMs = 5_000,
  ) {}

  /** Follows `jobId`'s stream from after `afterId` (its follower has read up to there). */
  watch(jobId: string, afterId: string | undefined): StreamWatch {
    const key = keys.events(jobId);
    let stream = this.streams.get(key);
    if (!stream) {
      // `$` only for the largest id: nothing is after it, and Redis cannot go past it.
      stream = { cursor: afterId === MAX_EVENT_ID ? '$' : (afterId ?? '0-0'), waiters: new Set() };
      this.streams.set(key, stream);
      this.generation++;
      this.interrupt();
    }
    const waiter: Waiter = { pending: false };
    stream.waiters.add(waiter);
    this.start();
    const entry = stream;
    return {
      wait: (ms) =>
        new Promise<boolean>((resolve) => {
          if (waiter.pending || this.closed) {
            waiter.pending = false;
            return resolve(true);
          }
          const timer = setTimeout(() => done(false), ms);
          const done = (woken: boolean) => {
            clearTimeout(timer);
            waiter.wake = undefined;
            waiter.pending = false;
            resolve(woken);
          };
          waiter.wake = done;
        }),
      close: () => {
        entry.waiters.delete(waiter);
        if (!entry.waiters.size && this.streams.get(key) === entry) this.streams.delete(key);
        waiter.wake?.(true);
      },
    };
  }

  /** How many streams the shared reader follows (for tests and metrics). */
  get followed(): number {
    return this.streams.size;
  }

  onApplicationShutdown(): void {
    this.closed = true;
    for (const s of this.streams.values()) for (const w of s.waiters) w.wake?.(true);
    this.reader?.disconnect();
  }

  private start(): void {
    if (this.running || this.closed) return;
    this.running = true;
    void this.loop();
  }

  private connection(): Redis {
    if (!this.reader) {
      // No command time limit: XREAD BLOCK waits up to blockMs. The id changes when the
      // connection is re-made, so it is asked again after every (re)connect.
      this.reader = this.redis.duplicate({
        enableOfflineQueue: true,
        maxRetriesPerRequest: null,
        lazyConnect: false,
        commandTimeout: undefined,
      });
      this.reader.on('error', NOTHING);
      this.reader.on('ready', () => (this.readerId = undefined));
    }
    return this.reader;
  }

  private async loop(): Promise<void> {
    const reader = this.connection();
    for (;;) {
      // Cleared in the same step as the check: a watch() right after sees it and restarts.
      if (this.closed || !this.streams.size) return void (this.running = false);
      const followed = [...this.streams];
      this.readingGeneration = this.generation;
      let res: [string, [string, string[]][]][] | null;
      try {
        this.readerId ??= Number(await reader.client('ID'));
        res = await reader.xread(
          'COUNT',
          100,
          'BLOCK',
          this.blockMs,
          'STREAMS',
          ...followed.map(([k]) => k),
          ...followed.map(([, s]) => s.cursor),
        );
      } catch {
        if (this.closed) return void (this.running = false);
        // Redis away: followers poll on their own timers meanwhile; try again shortly.
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [key, entries] of res ?? []) {
        const stream = this.streams.get(key);
        if (!stream || !entries.length) continue;
        stream.cursor = entries[entries.length - 1]![0];
        for (const w of stream.waiters) {
          w.pending = true;
          w.wake?.(true);
        }
      }
    }
  }

  /** Cuts the blocked read short so the loop picks up a new stream; retried until it has. */
  private interrupt(): void {
    if (!this.running || this.readerId === undefined) return;
    void this.redis.client('UNBLOCK', this.readerId).catch(NOTHING);
    // The unblock may land just before the read blocks: check again shortly.
    setTimeout(() => {
      if (this.running && this.readingGeneration < this.generation) this.interrupt();
    }, 50).unref();
  }
}
