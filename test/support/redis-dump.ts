import type { Redis } from 'ioredis';

/**
 * Every key of every type, as JSON-able values (strings read as bytes), for tests that
 * look for a value anywhere in Redis. A type it cannot read fails the test rather
 * than going unsearched.
 */
export async function dumpRedis(redis: Redis): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === 'none') continue; // expired since SCAN saw it
      out[`${type}:${key}`] =
        type === 'string'
          ? (await redis.getBuffer(key))?.toString('latin1')
          : type === 'hash'
            ? await redis.hgetall(key)
            : type === 'list'
              ? await redis.lrange(key, '0', '-1')
              : type === 'set'
                ? await redis.smembers(key)
                : type === 'zset'
                  ? await redis.zrange(key, '0', '-1', 'WITHSCORES')
                  : type === 'stream'
                    ? await redis.xrange(key, '-', '+')
                    : unreadable(type, key);
    }
  } while (cursor !== '0');
  return out;
}

function unreadable(type: string, key: string): never {
  throw new Error(`dumpRedis cannot read ${key} of type ${type}`);
}
