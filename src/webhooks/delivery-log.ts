import type { Redis } from 'ioredis';

/** One delivery attempt as `GET /v1/jobs/{id}/deliveries` lists it. */
export interface DeliveryAttempt {
  attempt: number;
  webhook_id: string;
  type: string;
  status_code: number | null;
  duration_ms: number;
  /** Why it failed (network error, timeout, refused, non-2xx); null on success. */
  error: string | null;
  /** The first bytes of the receiver's answer, for debugging a refusal. */
  response_excerpt: string | null;
  at: string;
}

const key = (jobId: string) => `stv:job:${jobId}:deliveries`;
const counterKey = (jobId: string) => `stv:job:${jobId}:deliveries:n`;
/** The list keeps the latest attempts only; a receiver failing for weeks of redeliveries stays bounded. */
const KEPT = 500;

/** Attempts per job in Redis, kept as long as the job record. */
export class DeliveryLog {
  constructor(
    private readonly redis: Redis,
    private readonly retentionSeconds: number,
  ) {}

  /**
   * Appends an attempt, numbered by a counter rather than the list's length: a retry and
   * a redelivery of the same job may finish at once (and the list is trimmed).
   */
  async record(jobId: string, entry: Omit<DeliveryAttempt, 'attempt'>): Promise<number> {
    const attempt = await this.redis.incr(counterKey(jobId));
    await this.redis
      .multi()
      .rpush(key(jobId), JSON.stringify({ attempt, ...entry }))
      .ltrim(key(jobId), -KEPT, -1)
      .expire(key(jobId), this.retentionSeconds)
      .expire(counterKey(jobId), this.retentionSeconds)
      .exec();
    return attempt;
  }

  async list(jobId: string): Promise<DeliveryAttempt[]> {
    return (await this.redis.lrange(key(jobId), 0, -1)).map((line) => JSON.parse(line) as DeliveryAttempt);
  }
}
