import type { Redis } from 'ioredis';

/**
 * Which tenants uploaded which contexts. The bytes are stored once by digest (two
 * tenants uploading the same tar share the files), but a tenant may only build from a
 * context it uploaded itself: otherwise knowing a digest would be enough to use, and
 * so confirm the existence of, another tenant's sources.
 *
 * Each tenant is charged the full unpacked size of every context it holds (shared or
 * not: a discount would tell it that someone else uploaded the same bytes), which is
 * what STEVEDORE_TENANT_CONTEXT_QUOTA_BYTES bounds.
 */
// Drops the sizes of contexts past their TTL, then sums what is left.
const USAGE = `
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
for _, digest in ipairs(expired) do redis.call('HDEL', KEYS[2], digest) end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local total = 0
for _, bytes in ipairs(redis.call('HVALS', KEYS[2])) do total = total + tonumber(bytes) end
return tostring(total)`;

export class ContextOwners {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async add(tenant: string, digest: string, expandedBytes = 0): Promise<void> {
    const key = `stv:contexts:${tenant}`;
    const now = Date.now();
    await this.redis
      .multi()
      .zadd(key, now, digest)
      .hset(`stv:context-bytes:${tenant}`, digest, String(expandedBytes))
      .zremrangebyscore(key, '-inf', now - this.ttlSeconds * 1000)
      .expire(key, this.ttlSeconds)
      .expire(`stv:context-bytes:${tenant}`, this.ttlSeconds)
      .exec();
  }

  async owns(tenant: string, digest: string): Promise<boolean> {
    return (await this.redis.zscore(`stv:contexts:${tenant}`, digest)) !== null;
  }

  /** Unpacked bytes of the contexts the tenant holds (not past their TTL). */
  async usage(tenant: string): Promise<number> {
    const key = `stv:contexts:${tenant}`;
    return Number(await this.redis.eval(USAGE, 2, key, `stv:context-bytes:${tenant}`, String(Date.now() - this.ttlSeconds * 1000)));
  }
}
