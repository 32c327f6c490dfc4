import type { Redis } from 'ioredis';
import type { NamedPolicyRules, PolicySnapshot } from './policy.schema.js';

/** A stored policy as the API shows it. */
export interface StoredPolicy extends PolicySnapshot {
  created_at: string;
}

const keys = {
  /** A hash: rules (JSON), version, created_at, updated_at. Tenant and name cannot hold a colon. */
  policy: (tenant: string, name: string) => `stv:policy:${tenant}:${name}`,
  /** The tenant's names, all at score 0 so ZRANGE lists them in name order. */
  index: (tenant: string) => `stv:policies:${tenant}`,
};

const FIELDS = ['rules', 'version', 'created_at', 'updated_at'] as const;

function fromHash(name: string, values: (string | null)[]): StoredPolicy | undefined {
  const [rules, version, created_at, updated_at] = values;
  if (!rules || !version || !created_at || !updated_at) return undefined;
  return { name, version: Number(version), created_at, updated_at, rules: JSON.parse(rules) as NamedPolicyRules };
}

/**
 * Named policies per tenant in Redis. Each PUT bumps `version`, so a job that recorded
 * `{name, version}` (and its snapshot) can be told apart from a later edit.
 */
export class PolicyStore {
  constructor(private readonly redis: Redis) {}

  /** Creates or replaces a policy; `created` tells which. */
  async put(tenant: string, name: string, rules: NamedPolicyRules): Promise<{ created: boolean; policy: StoredPolicy }> {
    const now = new Date().toISOString();
    const key = keys.policy(tenant, name);
    // One transaction: HSETNX keeps the first created_at and says whether the policy is new.
    const results = await this.redis
      .multi()
      .hsetnx(key, 'created_at', now)
      .hincrby(key, 'version', 1)
      .hset(key, 'rules', JSON.stringify(rules), 'updated_at', now)
      .zadd(keys.index(tenant), 0, name)
      .hget(key, 'created_at')
      .exec();
    if (!results) throw new Error('policy write was aborted');
    for (const [err] of results) if (err) throw err;
    const version = Number(results[1]![1]);
    return { created: results[0]![1] === 1, policy: { name, version, created_at: String(results[4]![1]), updated_at: now, rules } };
  }

  async get(tenant: string, name: string): Promise<StoredPolicy | undefined> {
    return fromHash(name, await this.redis.hmget(keys.policy(tenant, name), ...FIELDS));
  }

  /** The tenant's policies in name order. */
  async list(tenant: string): Promise<StoredPolicy[]> {
    const names = await this.redis.zrange(keys.index(tenant), '0', '-1');
    if (!names.length) return [];
    const pipeline = this.redis.pipeline();
    for (const name of names) pipeline.hmget(keys.policy(tenant, name), ...FIELDS);
    const rows = (await pipeline.exec()) ?? [];
    const out: StoredPolicy[] = [];
    names.forEach((name, i) => {
      const [err, value] = rows[i] ?? [null, null];
      if (err) throw err;
      // A name whose record is gone (deleted between the two reads) is skipped.
      const policy = fromHash(name, (value as (string | null)[] | null) ?? []);
      if (policy) out.push(policy);
    });
    return out;
  }

  /** True when the policy existed. Jobs already admitted keep the snapshot they recorded. */
  async delete(tenant: string, name: string): Promise<boolean> {
    const results = await this.redis.multi().del(keys.policy(tenant, name)).zrem(keys.index(tenant), name).exec();
    if (!results) throw new Error('policy delete was aborted');
    for (const [err] of results) if (err) throw err;
    return results[0]![1] === 1;
  }
}
