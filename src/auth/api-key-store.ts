import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Scope } from './principal.js';

/** An API key as stored and listed: never the key itself, only its SHA-256. */
export interface ApiKeyRecord {
  id: string;
  tenant: string;
  scopes: Scope[];
  rate_limit_per_minute: number | null;
  max_concurrent_jobs: number | null;
  /** Repository patterns the key may push to and read (normalised); null: the server's default. Absent in keys made before issue 13. */
  repositories?: string[] | null;
  created_at: string;
}

const keys = {
  record: (id: string) => `stv:apikey:${id}`,
  byHash: (hash: string) => `stv:apikey-hash:${hash}`,
  index: 'stv:apikeys',
  tenantLimits: (tenant: string) => `stv:tenant:${tenant}:limits`,
};

export const tenantLimitsKey = keys.tenantLimits;

/**
 * Lookup and rate limit in one script (one round trip per request): the key's record
 * by hash, then a fixed one-minute window counter. Returns nil for an unknown or
 * revoked key, else {record json, count in window, seconds left in window}.
 */
const AUTHENTICATE_LUA = `
local id = redis.call('GET', KEYS[1])
if not id then return nil end
local doc = redis.call('GET', 'stv:apikey:' .. id)
if not doc then return nil end
local limit = tonumber(cjson.decode(doc).rate_limit_per_minute) or tonumber(ARGV[2])
if limit <= 0 then return {doc, 0, 0, 0} end
local now = tonumber(ARGV[1])
local window = math.floor(now / 60)
local counter = 'stv:ratelimit:' .. id .. ':' .. window
local count = redis.call('INCR', counter)
if count == 1 then redis.call('EXPIRE', counter, 61) end
local left = (window + 1) * 60 - now
if count > limit then return {doc, count, left, limit} end
return {doc, 0, 0, limit}
`;

type RedisWithAuth = Redis & {
  stvAuthenticate(hashKey: string, now: string, defaultLimit: string): Promise<[string, number, number, number] | null>;
};

export const hashApiKey = (key: string) => createHash('sha256').update(key).digest('hex');

export type KeyCheck = { record: ApiKeyRecord; limitPerMinute: number; retryAfterSeconds?: number } | undefined;

/** API keys in Redis. Keys are 32 random bytes, so a plain SHA-256 is a safe verifier. */
export class ApiKeyStore {
  private readonly redis: RedisWithAuth;

  constructor(
    redis: Redis,
    private readonly defaultRateLimit: number,
  ) {
    this.redis = redis as RedisWithAuth;
    if (!('stvAuthenticate' in redis)) redis.defineCommand('stvAuthenticate', { numberOfKeys: 1, lua: AUTHENTICATE_LUA });
  }

  async create(input: {
    tenant: string;
    scopes: Scope[];
    rate_limit_per_minute?: number;
    max_concurrent_jobs?: number;
    repositories?: string[];
  }): Promise<{ record: ApiKeyRecord; key: string }> {
    const key = `stvk_${randomBytes(32).toString('base64url')}`;
    const record: ApiKeyRecord = {
      id: randomUUID(),
      tenant: input.tenant,
      scopes: [...new Set(input.scopes)],
      rate_limit_per_minute: input.rate_limit_per_minute ?? null,
      max_concurrent_jobs: input.max_concurrent_jobs ?? null,
      repositories: input.repositories ?? null,
      created_at: new Date().toISOString(),
    };
    const tx = this.redis
      .multi()
      .set(keys.record(record.id), JSON.stringify(record))
      .set(keys.byHash(hashApiKey(key)), record.id)
      .hset(keys.record(record.id) + ':hash', 'sha256', hashApiKey(key))
      .zadd(keys.index, Date.now(), record.id);
    // The tenant's running-job cap is the one its latest key set (see docs/tenancy.md).
    if (input.max_concurrent_jobs !== undefined)
      tx.hset(keys.tenantLimits(input.tenant), 'max_concurrent_jobs', String(input.max_concurrent_jobs));
    await tx.exec();
    return { record, key };
  }

  /** The tenant's running-job cap as its latest key set it; undefined when none did. */
  async tenantCap(tenant: string): Promise<number | undefined> {
    const value = await this.redis.hget(keys.tenantLimits(tenant), 'max_concurrent_jobs');
    return value === null ? undefined : Number(value);
  }

  async list(): Promise<ApiKeyRecord[]> {
    const ids = await this.redis.zrange(keys.index, '0', '-1');
    if (!ids.length) return [];
    const docs = await this.redis.mget(...ids.map(keys.record));
    return docs
      .filter((d): d is string => !!d)
      .map((d) => {
        const record = JSON.parse(d) as ApiKeyRecord;
        return { ...record, repositories: record.repositories ?? null };
      });
  }

  /** Revokes at once: the next request with the key is refused. False when unknown. */
  async delete(id: string): Promise<boolean> {
    const hash = await this.redis.hget(keys.record(id) + ':hash', 'sha256');
    if (!hash) return false;
    await this.redis
      .multi()
      .del(keys.byHash(hash), keys.record(id), keys.record(id) + ':hash')
      .zrem(keys.index, id)
      .exec();
    return true;
  }

  /** The key's record and, when over its limit, how long until the window resets. */
  async check(key: string): Promise<KeyCheck> {
    const res = await this.redis.stvAuthenticate(keys.byHash(hashApiKey(key)), String(Date.now() / 1000), String(this.defaultRateLimit));
    if (!res) return undefined;
    const [doc, over, left, limit] = res;
    return {
      record: JSON.parse(doc) as ApiKeyRecord,
      limitPerMinute: limit,
      retryAfterSeconds: over ? Math.max(1, Math.ceil(Number(left))) : undefined,
    };
  }
}
