import type { EventStreamHub } from './event-stream-hub.js';
import type { JobStore } from './job-store.js';
import { isTerminal, type JobEvent, type JobState } from './job-types.js';

export const isTerminalEvent = (e: JobEvent) => e.type === 'state' && isTerminal(e.data.state as JobState);

/** How long a follower waits without news before it reads (and checks the job) anyway. */
const IDLE_CHECK_MS = 5_000;

/**
 * A job's event log, replayed from `afterId` and then followed live until the
 * terminal event. Live events: the process's EventStreamHub (one blocking connection
 * for every stream) says when the stream grew; the follower reads them with XRANGE.
 */
export async function* followJobEvents(
  hub: EventStreamHub,
  store: JobStore,
  jobId: string,
  afterId: string | undefined,
  signal: AbortSignal,
): AsyncGenerator<JobEvent> {
  let last = afterId;
  const drain = async function* (): AsyncGenerator<JobEvent, boolean> {
    for (;;) {
      const page = await store.readEvents(jobId, last);
      for (const event of page) {
        yield event;
        last = event.id;
        if (isTerminalEvent(event)) return true;
      }
      if (page.length < 1000) return false;
    }
  };
  if (yield* drain()) return;
  if (signal.aborted) return;
  // Resumed after its terminal event (or after an id past every event): nothing more
  // will come, so end now rather than wait for the record to expire.
  const current = await store.get(jobId);
  if (!current || isTerminal(current.state)) return void (yield* drain());
  const watch = hub.watch(jobId, last);
  const stop = () => watch.close();
  signal.addEventListener('abort', stop, { once: true });
  try {
    // Read once more after registering: an event written between the replay and the
    // registration would otherwise wait for the idle check.
    while (!signal.aborted) {
      if (yield* drain()) return;
      const woken = await watch.wait(IDLE_CHECK_MS);
      if (signal.aborted) return;
      // Idle: a record that expired ends the stream, and so does a finished job whose
      // terminal event lies before `last` (a resume past the end).
      if (!woken) {
        const job = await store.get(jobId);
        if (!job || isTerminal(job.state)) return void (yield* drain());
      }
    }
  } finally {
    signal.removeEventListener('abort', stop);
    watch.close();
  }
}
