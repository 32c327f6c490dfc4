import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { PolicyException } from '../engines/trivy/scan-policy.js';
import { scopeMatches, type ExceptionScope, type ScannedImage } from './exception-scope.js';

/** One accepted finding: a vulnerability, where it is accepted, why, by whom, until when. */
export interface VulnerabilityException {
  id: string;
  vulnerability_id: string;
  scope: ExceptionScope;
  reason: string;
  owner: string;
  /** ISO date-time; the exception applies strictly before it. */
  expires: string;
  created_at: string;
  /** `api` (POST /v1/exceptions) or `openvex` (POST /v1/vex). */
  source: 'api' | 'openvex';
  /** When `exception.expired` was published for it (the sweeper's mark). */
  expired_notified_at?: string;
}

export type NewException = Pick<VulnerabilityException, 'vulnerability_id' | 'scope' | 'reason' | 'owner' | 'expires' | 'source'>;

/** The tenant has as many active exceptions as it may. */
export class ExceptionLimitError extends Error {
  constructor(readonly limit: number) {
    super(`the tenant already has ${limit} active exceptions (STEVEDORE_EXCEPTION_MAX_PER_TENANT)`);
  }
}

/** How long an expired exception stays readable (and listed) before Redis drops it. */
export const EXPIRED_RETENTION_SECONDS = 30 * 86_400;

/** Tenant names cannot hold `:` or `/` (TENANT_PATTERN), ids are UUIDs. */
const keys = {
  record: (tenant: string, id: string) => `stv:exception:${tenant}:${id}`,
  /** The tenant's ids scored by expiry (ms): active ones are those scored above now. */
  index: (tenant: string) => `stv:exceptions:${tenant}`,
  /** Every tenant's not yet announced expiries, `tenant/id` scored by expiry (ms): the sweeper's queue. */
  due: 'stv:exceptions:due',
};

/** An exception as a gate applies it (beside allow-list entries): which one, and whose. */
export const asPolicyException = (e: VulnerabilityException): PolicyException => ({
  exception_id: e.id,
  vulnerability_id: e.vulnerability_id,
  reason: e.reason,
  owner: e.owner,
  expires: e.expires,
});

export const isActive = (e: VulnerabilityException, now: Date) => Date.parse(e.expires) > now.getTime();

/** Tenant-scoped exception records in Redis (JSON strings that Redis expires after their retention). */
export class ExceptionStore {
  constructor(
    private readonly redis: Redis,
    private readonly maxPerTenant: number,
  ) {}

  async create(tenant: string, input: NewException, now = new Date()): Promise<VulnerabilityException> {
    const record: VulnerabilityException = { id: randomUUID(), ...input, created_at: now.toISOString() };
    await this.createMany(tenant, [record], now);
    return record;
  }

  /** Several at once (an OpenVEX document): all or none, within the tenant's cap. */
  async createMany(tenant: string, records: VulnerabilityException[], now = new Date()): Promise<void> {
    const active = await this.redis.zcount(keys.index(tenant), `(${now.getTime()}`, '+inf');
    if (active + records.length > this.maxPerTenant) throw new ExceptionLimitError(this.maxPerTenant);
    const tx = this.redis.multi();
    // Entries past their retention have no record any more: drop them from the index.
    tx.zremrangebyscore(keys.index(tenant), '-inf', now.getTime() - EXPIRED_RETENTION_SECONDS * 1000);
    for (const r of records) {
      const expiresMs = Date.parse(r.expires);
      const ttl = Math.max(1, Math.ceil((expiresMs - now.getTime()) / 1000) + EXPIRED_RETENTION_SECONDS);
      tx.set(keys.record(tenant, r.id), JSON.stringify(r), 'EX', ttl);
      tx.zadd(keys.index(tenant), expiresMs, r.id);
      tx.zadd(keys.due, expiresMs, `${tenant}/${r.id}`);
    }
    const results = await tx.exec();
    if (!results) throw new Error('exception write was aborted');
    for (const [err] of results) if (err) throw err;
  }

  async get(tenant: string, id: string): Promise<VulnerabilityException | undefined> {
    const raw = await this.redis.get(keys.record(tenant, id));
    return raw ? (JSON.parse(raw) as VulnerabilityException) : undefined;
  }

  /** The tenant's exceptions (expired ones within their retention too), soonest expiry first. */
  async list(tenant: string): Promise<VulnerabilityException[]> {
    return this.read(tenant, await this.redis.zrange(keys.index(tenant), '0', '-1'));
  }

  /** The tenant's exceptions in force at `now`. */
  async active(tenant: string, now = new Date()): Promise<VulnerabilityException[]> {
    const ids = await this.redis.zrangebyscore(keys.index(tenant), `(${now.getTime()}`, '+inf');
    return (await this.read(tenant, ids)).filter((e) => isActive(e, now));
  }

  /** The tenant's exceptions in force at `now` that cover the image. */
  async matching(tenant: string, image: ScannedImage, now = new Date()): Promise<VulnerabilityException[]> {
    return (await this.active(tenant, now)).filter((e) => scopeMatches(e.scope, image));
  }

  /** True when the exception existed. */
  async delete(tenant: string, id: string): Promise<boolean> {
    const results = await this.redis
      .multi()
      .del(keys.record(tenant, id))
      .zrem(keys.index(tenant), id)
      .zrem(keys.due, `${tenant}/${id}`)
      .exec();
    if (!results) throw new Error('exception delete was aborted');
    for (const [err] of results) if (err) throw err;
    return results[0]![1] === 1;
  }

  /** Up to `limit` exceptions (of any tenant) whose expiry is at or before `now` and not yet announced. */
  async due(now: Date, limit: number): Promise<{ tenant: string; id: string; expiresMs: number }[]> {
    const raw = await this.redis.zrangebyscore(keys.due, '-inf', now.getTime(), 'WITHSCORES', 'LIMIT', 0, limit);
    const out: { tenant: string; id: string; expiresMs: number }[] = [];
    for (let i = 0; i < raw.length; i += 2) {
      const [tenant, id] = raw[i]!.split('/');
      out.push({ tenant: tenant!, id: id!, expiresMs: Number(raw[i + 1]) });
    }
    return out;
  }

  /**
   * Takes one due entry off the queue: true for exactly one caller, however many
   * processes sweep (ZREM is atomic), so each expiry is announced once.
   */
  async claim(tenant: string, id: string): Promise<boolean> {
    return (await this.redis.zrem(keys.due, `${tenant}/${id}`)) === 1;
  }

  /** Puts a claimed entry back (its event could not be queued): the next sweep retries. */
  async unclaim(tenant: string, id: string, expiresMs: number): Promise<void> {
    await this.redis.zadd(keys.due, expiresMs, `${tenant}/${id}`);
  }

  /** Records that the expiry was announced (the record keeps its TTL). */
  async markNotified(tenant: string, id: string, at: Date): Promise<void> {
    const record = await this.get(tenant, id);
    if (!record) return;
    await this.redis.set(keys.record(tenant, id), JSON.stringify({ ...record, expired_notified_at: at.toISOString() }), 'KEEPTTL');
  }

  private async read(tenant: string, ids: string[]): Promise<VulnerabilityException[]> {
    if (!ids.length) return [];
    const values = await this.redis.mget(ids.map((id) => keys.record(tenant, id)));
    return values.filter((v): v is string => v !== null).map((v) => JSON.parse(v) as VulnerabilityException);
  }
}
