/**
 * Shapes of the ids callers send, checked before any Redis call: a job id that is not a
 * uuid could name another key (`<id>:events` is the job's stream, so HGETALL on it was a
 * WRONGTYPE 500), and an event id Redis cannot parse was a 500 too.
 */
export const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const isJobId = (id: unknown): id is string => typeof id === 'string' && JOB_ID.test(id);

const EVENT_ID = /^(\d{1,20})-(\d{1,20})$/;
export const EVENT_ID_PATTERN = '^\\d{1,20}-\\d{1,20}$';
const MAX_UINT64 = 2n ** 64n - 1n;
/** The largest stream id: nothing can come after it. */
export const MAX_EVENT_ID = `${MAX_UINT64}-${MAX_UINT64}`;

/**
 * A Redis stream id `<ms>-<seq>`, both parts unsigned 64-bit, in canonical form (no
 * leading zeros); undefined for anything else.
 */
export function parseEventId(value: string): string | undefined {
  const m = EVENT_ID.exec(value);
  if (!m) return undefined;
  const [ms, seq] = [BigInt(m[1]!), BigInt(m[2]!)];
  if (ms > MAX_UINT64 || seq > MAX_UINT64) return undefined;
  return `${ms}-${seq}`;
}
