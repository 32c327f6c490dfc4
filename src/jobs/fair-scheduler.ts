import type { Redis } from 'ioredis';
import type { Action } from './job-types.js';

/**
 * Fair scheduling between tenants on one queue, with BullMQ priorities (lower runs
 * first) as start-time fair queueing: a job's priority is
 *   max(its tenant's previous priority + 1, the priority of the job started last)
 * so each tenant's jobs are numbered 1, 2, 3 … from "now", and the queue interleaves
 * tenants round-robin. A tenant with 100 queued jobs holds priorities up to ~100; another
 * tenant's first job gets the priority being served right now, so it waits only for
 * the jobs already running (at most one build slot). Ties run in arrival order.
 *
 * BullMQ priorities end at 2^21: after two million numbered jobs the clock starts again
 * (jobs still queued then may be passed once by newer ones).
 */
// Runs inside the job-create script (job-store.ts): KEYS[4] is the action's fair hash,
// ARGV[5] the tenant.
export const FAIR_PRIORITY_LUA = `
local v = tonumber(redis.call('HGET', KEYS[4], 'vclock')) or 1
local last = tonumber(redis.call('HGET', KEYS[4], 't:' .. ARGV[5])) or 0
local p = math.max(last + 1, v)
if p > 2000000 then redis.call('DEL', KEYS[4]); p = 1 end
redis.call('HSET', KEYS[4], 't:' .. ARGV[5], p)
return p
`;

/**
 * Takes a running slot for a job of a tenant (its cap: the tenant's limit, else the
 * default; 0 = none) and moves the fair clock to the job's priority. Members whose
 * record is no longer queued or running (a lost worker's) are dropped first, so a
 * crash never leaks a slot. Returns 1 when the slot was taken, 0 when at the cap.
 */
const ACQUIRE_LUA = `
local cap = tonumber(redis.call('HGET', KEYS[2], 'max_concurrent_jobs')) or tonumber(ARGV[2])
if cap > 0 and redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then
  local n = 0
  for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
    local st = redis.call('HGET', 'stv:job:' .. m, 'state')
    if st == 'running' or st == 'queued' then n = n + 1 else redis.call('SREM', KEYS[1], m) end
  end
  if n >= cap then return 0 end
end
redis.call('SADD', KEYS[1], ARGV[1])
local p = tonumber(ARGV[3])
if p > 0 and p > (tonumber(redis.call('HGET', KEYS[3], 'vclock')) or 0) then redis.call('HSET', KEYS[3], 'vclock', p) end
return 1
`;

export const fairKey = (action: Action) => `stv:fair:${action}`;

const keys = {
  fair: fairKey,
  running: (tenant: string) => `stv:tenant:${tenant}:running`,
  limits: (tenant: string) => `stv:tenant:${tenant}:limits`,
};

type RedisWithFair = Redis & {
  stvAcquireSlot(
    runningKey: string,
    limitsKey: string,
    fairKey: string,
    jobId: string,
    defaultCap: string,
    priority: string,
  ): Promise<number>;
};

export class FairScheduler {
  private readonly redis: RedisWithFair;

  constructor(
    redis: Redis,
    private readonly defaultTenantCap: number,
  ) {
    this.redis = redis as RedisWithFair;
    if (!('stvAcquireSlot' in redis)) redis.defineCommand('stvAcquireSlot', { numberOfKeys: 3, lua: ACQUIRE_LUA });
  }

  /** False when the tenant is at its cap of running jobs (the job waits and is tried again). */
  async acquire(action: Action, tenant: string, jobId: string, priority: number): Promise<boolean> {
    return (
      (await this.redis.stvAcquireSlot(
        keys.running(tenant),
        keys.limits(tenant),
        keys.fair(action),
        jobId,
        String(this.defaultTenantCap),
        String(priority),
      )) === 1
    );
  }

  async release(tenant: string, jobId: string): Promise<void> {
    await this.redis.srem(keys.running(tenant), jobId);
  }

  /** Jobs of a tenant holding a running slot now. */
  running(tenant: string): Promise<number> {
    return this.redis.scard(keys.running(tenant));
  }
}
