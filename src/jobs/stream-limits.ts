import type { Principal } from '../auth/principal.js';
import { AppError } from '../errors/app-error.js';

/**
 * Open live event streams (SSE follow and gRPC Watch) per API key and per tenant, in
 * this API process: each one holds a socket, a follower and a slot on the shared
 * reader, so one key could otherwise open thousands. Counted in memory, not in Redis:
 * a stream lives exactly as long as its connection to this process, so a crash frees
 * its slots with it (a Redis count would need leases). With several API replicas the
 * caps hold per replica. The admin token is not capped (like its rate limit).
 */
export class StreamLimits {
  private readonly byKey = new Map<string, number>();
  private readonly byTenant = new Map<string, number>();

  constructor(private readonly limits: { perKey: number; perTenant: number }) {}

  /** Takes a slot or throws 429 TOO_MANY_STREAMS; the returned function frees it (once). */
  acquire(principal: Principal): () => void {
    if (principal.root) return () => undefined;
    const key = principal.keyId ?? `tenant:${principal.tenant}`;
    const [k, t] = [this.byKey.get(key) ?? 0, this.byTenant.get(principal.tenant) ?? 0];
    const { perKey, perTenant } = this.limits;
    if (perKey > 0 && k >= perKey)
      throw tooMany(`this API key has ${k} event streams open (at most ${perKey}); close one first`, { scope: 'key', limit: perKey });
    if (perTenant > 0 && t >= perTenant)
      throw tooMany(`tenant ${principal.tenant} has ${t} event streams open (at most ${perTenant}); close one first`, {
        scope: 'tenant',
        limit: perTenant,
      });
    this.byKey.set(key, k + 1);
    this.byTenant.set(principal.tenant, t + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      decrement(this.byKey, key);
      decrement(this.byTenant, principal.tenant);
    };
  }
}

function decrement(map: Map<string, number>, key: string): void {
  const n = (map.get(key) ?? 1) - 1;
  if (n > 0) map.set(key, n);
  else map.delete(key);
}

const tooMany = (message: string, details: Record<string, unknown>) => new AppError('rate_limited', 'TOO_MANY_STREAMS', message, details);
