import type { Redis } from 'ioredis';
import type { SecretCipher } from './secret-cipher.js';

/** Same rule as build secret ids (buildctl's `--secret id=`): no comma, quote or colon. */
export const SECRET_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
export const SECRET_NAME_RULE = 'must be 1-64 letters, digits and ._- (starting with a letter or digit)';
export const MAX_SECRET_VALUE_BYTES = 64 * 1024;

/** What anyone may see of a secret: never its value. */
export interface SecretMetadata {
  name: string;
  created_at: string;
  updated_at: string;
}

/** No secrets key is configured: nothing can be sealed or opened. */
export class SecretsUnavailableError extends Error {
  constructor() {
    super('tenant secrets need STEVEDORE_SECRETS_KEY on this server');
    this.name = 'SecretsUnavailableError';
  }
}

/**
 * The stored value does not open: the secrets key changed, or the record was
 * tampered with or copied from elsewhere. Carries the name only, never the cause.
 */
export class SecretUnreadableError extends Error {
  constructor(readonly secretName: string) {
    super(`secret ${secretName} cannot be decrypted (was STEVEDORE_SECRETS_KEY changed?)`);
    this.name = 'SecretUnreadableError';
  }
}

const keys = {
  /** A hash: sealed, created_at, updated_at. Tenant and name cannot hold a colon. */
  secret: (tenant: string, name: string) => `stv:secret:${tenant}:${name}`,
  /** The tenant's names, all at score 0 so ZRANGE lists them in name order. */
  index: (tenant: string) => `stv:secrets:${tenant}`,
};

/**
 * Binds a ciphertext to its tenant and name: a sealed value copied to another
 * tenant's (or another name's) key fails to decrypt instead of leaking across.
 */
const associatedData = (tenant: string, name: string) => `secret:${tenant}:${name}`;

/**
 * Tenant-scoped build secrets in Redis, sealed with AES-256-GCM. Write-only from the
 * API: only `resolve` (the build worker) ever sees a value again.
 */
export class TenantSecrets {
  constructor(
    private readonly redis: Redis,
    private readonly cipher: SecretCipher | undefined,
  ) {}

  /** Creates or replaces a secret; `created` tells which. */
  async put(tenant: string, name: string, value: string): Promise<{ created: boolean; metadata: SecretMetadata }> {
    const sealed = this.requireCipher().encrypt(value, associatedData(tenant, name));
    const now = new Date().toISOString();
    const key = keys.secret(tenant, name);
    // One transaction: HSETNX says whether the secret is new and keeps the first created_at.
    const results = await this.redis
      .multi()
      .hsetnx(key, 'created_at', now)
      .hset(key, 'sealed', sealed, 'updated_at', now)
      .zadd(keys.index(tenant), 0, name)
      .hget(key, 'created_at')
      .exec();
    if (!results) throw new Error('secret write was aborted');
    for (const [err] of results) if (err) throw err;
    return { created: results[0]![1] === 1, metadata: { name, created_at: String(results[3]![1]), updated_at: now } };
  }

  async get(tenant: string, name: string): Promise<SecretMetadata | undefined> {
    const [created_at, updated_at] = await this.redis.hmget(keys.secret(tenant, name), 'created_at', 'updated_at');
    return created_at && updated_at ? { name, created_at, updated_at } : undefined;
  }

  async has(tenant: string, name: string): Promise<boolean> {
    return (await this.redis.exists(keys.secret(tenant, name))) === 1;
  }

  /** The tenant's secrets in name order. */
  async list(tenant: string): Promise<SecretMetadata[]> {
    const names = await this.redis.zrange(keys.index(tenant), '0', '-1');
    if (!names.length) return [];
    const pipeline = this.redis.pipeline();
    for (const name of names) pipeline.hmget(keys.secret(tenant, name), 'created_at', 'updated_at');
    const rows = (await pipeline.exec()) ?? [];
    const out: SecretMetadata[] = [];
    names.forEach((name, i) => {
      const [err, value] = rows[i] ?? [null, null];
      if (err) throw err;
      const [created_at, updated_at] = (value as (string | null)[] | null) ?? [];
      // A name whose record is gone (deleted between the two reads) is skipped.
      if (created_at && updated_at) out.push({ name, created_at, updated_at });
    });
    return out;
  }

  /** True when the secret existed. */
  async delete(tenant: string, name: string): Promise<boolean> {
    const results = await this.redis.multi().del(keys.secret(tenant, name)).zrem(keys.index(tenant), name).exec();
    if (!results) throw new Error('secret delete was aborted');
    for (const [err] of results) if (err) throw err;
    return results[0]![1] === 1;
  }

  /** The plaintext, for the build worker only; undefined when the tenant has no such secret. */
  async resolve(tenant: string, name: string): Promise<string | undefined> {
    const sealed = await this.redis.hget(keys.secret(tenant, name), 'sealed');
    if (sealed === null) return undefined;
    try {
      return this.requireCipher().decrypt(sealed, associatedData(tenant, name));
    } catch (err) {
      if (err instanceof SecretsUnavailableError) throw err;
      throw new SecretUnreadableError(name);
    }
  }

  private requireCipher(): SecretCipher {
    if (!this.cipher) throw new SecretsUnavailableError();
    return this.cipher;
  }
}
