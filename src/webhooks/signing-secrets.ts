import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { SecretCipher } from '../secrets/secret-cipher.js';

/** How long the previous secret still signs after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;

const key = (tenant: string) => `stv:webhook-secret:${tenant}`;
const aad = (tenant: string) => `webhook-secret:${tenant}`;
const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/**
 * Each tenant's webhook signing secret (Standard Webhooks `whsec_…`), sealed with the
 * server's secrets key. Made on first use; a rotation keeps the previous one signing
 * for 24 h, so receivers can switch without dropping a delivery.
 */
export class WebhookSecrets {
  constructor(
    private readonly redis: Redis,
    private readonly cipher: SecretCipher | undefined,
  ) {}

  /** The current secret, made (atomically, once) when the tenant has none. */
  async current(tenant: string): Promise<string> {
    const sealed = await this.redis.hget(key(tenant), 'current');
    if (sealed) return this.open(tenant, sealed);
    await this.redis.hsetnx(key(tenant), 'current', this.seal(tenant, newSecret()));
    return this.open(tenant, (await this.redis.hget(key(tenant), 'current'))!);
  }

  async rotate(tenant: string): Promise<{ secret: string; previous_valid_until: string }> {
    const previous = await this.current(tenant);
    const secret = newSecret();
    const until = Date.now() + ROTATION_OVERLAP_MS;
    await this.redis.hset(
      key(tenant),
      'current',
      this.seal(tenant, secret),
      'previous',
      this.seal(tenant, previous),
      'previous_until',
      String(until),
    );
    return { secret, previous_valid_until: new Date(until).toISOString() };
  }

  /** Secrets to sign with now: the current one, and the previous one during its overlap. */
  async signing(tenant: string): Promise<string[]> {
    const current = await this.current(tenant);
    const [previous, until] = await this.redis.hmget(key(tenant), 'previous', 'previous_until');
    return previous && Number(until) > Date.now() ? [current, this.open(tenant, previous)] : [current];
  }

  private seal(tenant: string, secret: string): string {
    if (!this.cipher) throw new Error('STEVEDORE_SECRETS_KEY is not configured');
    return this.cipher.encrypt(secret, aad(tenant));
  }

  private open(tenant: string, sealed: string): string {
    if (!this.cipher) throw new Error('STEVEDORE_SECRETS_KEY is not configured');
    return this.cipher.decrypt(sealed, aad(tenant));
  }
}
