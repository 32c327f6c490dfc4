import type { Redis } from 'ioredis';

/**
 * Which tenants uploaded which contexts. The bytes are stored once by digest (two
 * tenants uploading the same tar share the files), but a tenant may only build from a
 * context it uploaded itself: otherwise knowing a digest would be enough to use, and
 * so confirm the existence of, another tenant's sources.
 */
export class ContextOwners {
  constructor(
    private readonly redis: Redis,
    private readonly ttlSeconds: number,
  ) {}

  async add(tenant: string, digest: string): Promise<void> {
    const key = `stv:contexts:${tenant}`;
    const now = Date.now();
    await this.redis.multi().zadd(key, now, digest).zremrangebyscore(key, '-inf', now - this.ttlSeconds * 1000).expire(key, this.ttlSeconds).exec();
  }

  async owns(tenant: string, digest: string): Promise<boolean> {
    return (await this.redis.zscore(`stv:contexts:${tenant}`, digest)) !== null;
  }
}
