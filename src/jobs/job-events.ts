import type { Redis } from 'ioredis';
import { keys, toEvent, type JobStore } from './job-store.js';
import { isTerminal, type JobEvent, type JobState } from './job.types.js';

export const isTerminalEvent = (e: JobEvent) => e.type === 'state' && isTerminal(e.data.state as JobState);

/**
 * A job's event log, replayed from `afterId` and then followed live until the
 * terminal event. Live events arrive through a blocking XREAD on a connection of the
 * follower's own, which is dropped when the caller aborts.
 */
export async function* followJobEvents(redis: Redis, store: JobStore, jobId: string, afterId: string | undefined, signal: AbortSignal): AsyncGenerator<JobEvent> {
  let last = afterId;
  for (;;) {
    const replay = await store.readEvents(jobId, last);
    for (const event of replay) {
      yield event;
      last = event.id;
      if (isTerminalEvent(event)) return;
    }
    if (replay.length < 1000) break;
  }
  // No command time limit here (the shared connection has one): XREAD BLOCK waits 5 s.
  const reader = redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, lazyConnect: false, commandTimeout: undefined });
  reader.on('error', () => undefined);
  const stop = () => reader.disconnect();
  signal.addEventListener('abort', stop, { once: true });
  try {
    while (!signal.aborted) {
      const res = (await reader.xread('COUNT', 1000, 'BLOCK', 5_000, 'STREAMS', keys.events(jobId), last ?? '0').catch((err: Error) => {
        if (signal.aborted) return null;
        throw err;
      })) as [string, [string, string[]][]][] | null;
      if (signal.aborted) return;
      if (!res) {
        // Idle: make sure the job still exists (a record that expired ends the stream).
        if (!(await store.get(jobId))) return;
        continue;
      }
      for (const [id, fields] of res[0]![1]) {
        const event = toEvent(id, fields);
        yield event;
        last = id;
        if (isTerminalEvent(event)) return;
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
    reader.disconnect();
  }
}
