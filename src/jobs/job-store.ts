import type { Redis } from 'ioredis';
import { fairKey, FAIR_PRIORITY_LUA } from './fair-scheduler.js';
import { MAX_EVENT_ID } from './ids.js';
import { isTerminal, type JobEvent, type JobEventType, type JobRecord, type JobState } from './job-types.js';
import type { StateChanges } from './state-changes.js';

/** Redis keys, all under one prefix so an operator can find (and only find) ours. */
export const keys = {
  job: (id: string) => `stv:job:${id}`,
  events: (id: string) => `stv:job:${id}:events`,
  /** Each tenant's jobs, by creation time: lists never see another tenant's. */
  index: (tenant: string) => `stv:jobs:t:${tenant}`,
  /** Every job not yet terminal, by creation time: what the reconciler checks (job-reconciler.ts), never a SCAN. */
  live: 'stv:jobs:live',
  idempotency: (key: string) => `stv:idem:${key}`,
  concurrency: (tenant: string, key: string) => `stv:ckey:${tenant}:${key}`,
  cancelChannel: 'stv:cancel',
};

const EVENTS_MAXLEN = 10_000;

/**
 * Atomic state transition: only from an allowed state, fields and state set and the
 * event appended in one step, so the log's order is the record's order and a cancel
 * racing a worker can never both win. Values are stored JSON-encoded except `state`.
 * A terminal transition (the only kind with a retention, ARGV[5]) also leaves the live index (KEYS[3]).
 */
const TRANSITION_LUA = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return false end
if ARGV[1] ~= '*' then
  local ok = false
  for s in string.gmatch(ARGV[1], '[^,]+') do if s == state then ok = true break end end
  if not ok then return {state, '', 0} end
end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[7] then return {state, '', 0} end
if #ARGV > 7 then redis.call('HSET', KEYS[1], unpack(ARGV, 8)) end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 'state', ARGV[2]); state = ARGV[2] end
local id = ''
if ARGV[3] ~= '' then id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', 'type', ARGV[3], 'data', ARGV[4]) end
if tonumber(ARGV[5]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[5]); redis.call('EXPIRE', KEYS[2], ARGV[5]) end
local doc = cjson.decode(redis.call('HGET', KEYS[1], 'doc') or '{}')
if tonumber(ARGV[5]) > 0 then redis.call('ZREM', KEYS[3], doc.id or '') end
return {state, id, 1, doc.action or '', doc.tenant or '', redis.call('HGET', KEYS[1], 'started_at') or ''}
`;

/**
 * A new job: record, index and live-index entries and first event, atomically, as one command — and its
 * fair-scheduling priority (see FAIR_PRIORITY_LUA), returned, so the submit costs one
 * script before the queue add.
 */
const CREATE_LUA = `
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('ZADD', KEYS[3], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'type', 'state', 'data', ARGV[4])
${FAIR_PRIORITY_LUA}
`;

/**
 * Appends an event only while the job is running: late progress after a cancel is
 * dropped. With an owner (ARGV[5]) only that run's worker may append: 0 says another
 * worker has taken the job over (see Fencing in job-runner.ts).
 */
const APPEND_LUA = `
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return false end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[1], 'owner') ~= ARGV[5] then return 0 end
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'type', ARGV[3], 'data', ARGV[4])
`;

type RedisWithScripts = Redis & {
  stvTransition(
    jobKey: string,
    eventsKey: string,
    liveKey: string,
    ...args: string[]
  ): Promise<[string, string, number, string?, string?, string?] | null>;
  stvAppend(jobKey: string, eventsKey: string, ...args: string[]): Promise<string | number | null>;
  stvCreate(jobKey: string, eventsKey: string, indexKey: string, fairKey: string, liveKey: string, ...args: string[]): Promise<number>;
};

export interface TransitionResult {
  applied: boolean;
  state: JobState;
  eventId?: string;
}

export interface ListFilter {
  tenant: string;
  state?: JobState;
  action?: string;
  limit: number;
  cursor?: string;
}

const now = () => performance.timeOrigin + performance.now();

export class JobStore {
  private readonly redis: RedisWithScripts;

  /** `changes` hears every state this store moves a job into (metrics, the transition log). */
  constructor(
    redis: Redis,
    private readonly retentionSeconds: number,
    private readonly changes?: StateChanges,
  ) {
    this.redis = redis as RedisWithScripts;
    if (!('stvTransition' in redis)) {
      redis.defineCommand('stvTransition', { numberOfKeys: 3, lua: TRANSITION_LUA });
      redis.defineCommand('stvAppend', { numberOfKeys: 2, lua: APPEND_LUA });
      redis.defineCommand('stvCreate', { numberOfKeys: 5, lua: CREATE_LUA });
    }
  }

  /**
   * Writes a new queued job, its index entry and first event (one script call) and
   * returns its BullMQ priority among its queue's tenants. `eventData` goes on the first
   * state event (e.g. the submitting request's id).
   */
  /** `fairKeyOverride`: a background job numbers itself apart, so it moves no tenant's place in the fair order. */
  async create(job: JobRecord, eventData: Record<string, unknown> = {}, fairKeyOverride?: string): Promise<number> {
    const event = JSON.stringify({ at: now(), state: job.state, ...eventData });
    // The record is written as one JSON `doc` (cheap on the hot submit path); later
    // transitions set single fields, which override the doc when read.
    const { state, ...rest } = job;
    const priority = await this.redis.stvCreate(
      keys.job(job.id),
      keys.events(job.id),
      keys.index(job.tenant),
      fairKeyOverride ?? fairKey(job.action),
      keys.live,
      String(Date.parse(job.created_at)),
      job.id,
      String(EVENTS_MAXLEN),
      event,
      job.tenant,
      'state',
      state,
      'doc',
      JSON.stringify(rest),
    );
    this.changes?.publish({ id: job.id, action: job.action, tenant: job.tenant, state, data: eventData });
    return priority;
  }

  async get(id: string): Promise<JobRecord | undefined> {
    const raw = await this.redis.hgetall(keys.job(id));
    return raw.state ? decode(raw) : undefined;
  }

  /**
   * Moves a job from one of `from` to `to`, setting `fields` and logging a state event
   * carrying `eventData`. Returns applied=false (and the current state) otherwise.
   */
  async transition(
    id: string,
    from: JobState[] | '*',
    to: JobState | undefined,
    fields: Partial<JobRecord> & { owner?: string },
    eventData: Record<string, unknown> = {},
    /** Applied only while this run still owns the job (its fencing token). */
    owner?: string,
  ): Promise<TransitionResult | undefined> {
    const at = now();
    const data = to ? JSON.stringify({ at, state: to, ...eventData }) : '';
    const retention = to && isTerminal(to) ? this.retentionSeconds : 0;
    const args = [
      from === '*' ? '*' : from.join(','),
      to ?? '',
      to ? 'state' : '',
      data,
      String(retention),
      String(EVENTS_MAXLEN),
      owner === undefined ? '' : JSON.stringify(owner),
      ...Object.entries(encode(fields)).flat(),
    ];
    const res = await this.redis.stvTransition(keys.job(id), keys.events(id), keys.live, ...args);
    if (!res) return undefined;
    const [state, eventId, applied, action, tenant, startedAt] = res;
    if (applied === 1 && to)
      this.changes?.publish({
        id,
        action: action ?? '',
        tenant: tenant ?? '',
        state: to,
        startedAt: startedAt ? (JSON.parse(startedAt) as string) : undefined,
        data: eventData,
      });
    return { applied: applied === 1, state: state as JobState, eventId: eventId || undefined };
  }

  /**
   * Progress, log lines and results of a running job. With `owner`, only while that run
   * owns the job: `false` when another run has taken it over (nothing appended).
   */
  async appendEvent(
    id: string,
    type: Exclude<JobEventType, 'state'>,
    data: Record<string, unknown>,
    owner?: string,
  ): Promise<string | false | undefined> {
    const res = await this.redis.stvAppend(
      keys.job(id),
      keys.events(id),
      'running',
      String(EVENTS_MAXLEN),
      type,
      JSON.stringify({ at: now(), ...data }),
      owner === undefined ? '' : JSON.stringify(owner),
    );
    if (res === 0) return false;
    return typeof res === 'string' ? res : undefined;
  }

  /** Whether the run holding `owner` still owns the job, and it is still running. */
  async owns(id: string, owner: string): Promise<boolean> {
    const [state, current] = await this.redis.hmget(keys.job(id), 'state', 'owner');
    return state === 'running' && current === JSON.stringify(owner);
  }

  /** Events after `afterId` (exclusive; from the start when absent). */
  async readEvents(id: string, afterId?: string, count = 1000): Promise<JobEvent[]> {
    // Redis refuses an exclusive range after the largest id; nothing can follow it anyway.
    if (afterId === MAX_EVENT_ID) return [];
    const start = afterId ? `(${afterId}` : '-';
    const entries = await this.redis.xrange(keys.events(id), start, '+', 'COUNT', count);
    return entries.map(([eventId, fields]) => toEvent(eventId, fields));
  }

  /** Newest first, cursor-paginated; records that expired are dropped from the index. */
  async list(filter: ListFilter): Promise<{ items: JobRecord[]; next_cursor: string | null }> {
    const items: JobRecord[] = [];
    let cursor = filter.cursor ? decodeCursor(filter.cursor) : undefined;
    const batch = Math.max(filter.limit * 2, 50);
    for (let rounds = 0; items.length < filter.limit && rounds < 50; rounds++) {
      const max = cursor ? String(cursor.score) : '+inf';
      const raw = await this.redis.zrevrangebyscore(keys.index(filter.tenant), max, '-inf', 'WITHSCORES', 'LIMIT', 0, batch);
      let ids: { id: string; score: number }[] = [];
      for (let i = 0; i < raw.length; i += 2) ids.push({ id: raw[i]!, score: Number(raw[i + 1]) });
      // Same-score members come in reverse lexical order; skip those the cursor already passed.
      if (cursor) ids = ids.filter((e) => e.score < cursor!.score || e.id < cursor!.id);
      if (ids.length === 0) return { items, next_cursor: null };
      const pipeline = this.redis.pipeline();
      for (const e of ids) pipeline.hgetall(keys.job(e.id));
      const records = (await pipeline.exec()) ?? [];
      const expired: string[] = [];
      for (let i = 0; i < ids.length; i++) {
        const entry = ids[i]!;
        cursor = entry;
        const rec = records[i]?.[1] as Record<string, string> | undefined;
        if (!rec?.state) {
          expired.push(entry.id);
          continue;
        }
        const job = decode(rec);
        if ((filter.state && job.state !== filter.state) || (filter.action && job.action !== filter.action)) continue;
        items.push(job);
        if (items.length === filter.limit) return { items, next_cursor: encodeCursor(entry) };
      }
      if (expired.length) await this.redis.zrem(keys.index(filter.tenant), ...expired);
      if (ids.length < batch) return { items, next_cursor: null };
    }
    return { items, next_cursor: cursor && items.length ? encodeCursor(cursor) : null };
  }
}

function encode(job: Partial<JobRecord>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(job)) {
    if (v === undefined) continue;
    out[k] = k === 'state' ? (v as JobState) : JSON.stringify(v);
  }
  return out;
}

/** Field order of a record as clients see it (Redis hashes keep no order). */
const FIELD_ORDER = [
  'id',
  'tenant',
  'action',
  'state',
  'request',
  'result',
  'error',
  'created_at',
  'started_at',
  'finished_at',
  'attempts',
  'timeout_seconds',
  'cancel_requested',
  'cancel_code',
  'origin',
];

function decode(raw: Record<string, string>): JobRecord {
  const doc = raw.doc ? (JSON.parse(raw.doc) as Record<string, unknown>) : {};
  const out: Record<string, unknown> = {};
  for (const k of FIELD_ORDER) {
    if (k === 'state') out.state = raw.state;
    else if (k in raw) out[k] = JSON.parse(raw[k]!);
    else if (k in doc) out[k] = doc[k];
  }
  return out as unknown as JobRecord;
}

export function toEvent(id: string, fields: string[]): JobEvent {
  const map: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) map[fields[i]!] = fields[i + 1]!;
  const { at, ...data } = JSON.parse(map.data ?? '{}') as { at: number } & Record<string, unknown>;
  return { id, type: map.type as JobEventType, at, data };
}

function encodeCursor(c: { score: number; id: string }): string {
  return Buffer.from(`${c.score}:${c.id}`).toString('base64url');
}

export class InvalidCursorError extends Error {}

function decodeCursor(cursor: string): { score: number; id: string } {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const m = /^(\d{1,16}):([0-9a-f-]{36})$/.exec(text);
  if (!m) throw new InvalidCursorError('invalid cursor');
  return { score: Number(m[1]), id: m[2]! };
}
