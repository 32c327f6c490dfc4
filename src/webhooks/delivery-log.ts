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

/** Attempts per job in Redis, kept as long as the job record. */
export class DeliveryLog {
  constructor(
    private readonly redis: Redis,
    private readonly retentionSeconds: number,
  ) {}

  async record(jobId: string, attempt: DeliveryAttempt): Promise<void> {
    await this.redis.multi().rpush(key(jobId), JSON.stringify(attempt)).ltrim(key(jobId), -500, -1).expire(key(jobId), this.retentionSeconds).exec();
  }

  async list(jobId: string): Promise<DeliveryAttempt[]> {
    return (await this.redis.lrange(key(jobId), 0, -1)).map((line) => JSON.parse(line) as DeliveryAttempt);
  }

  async count(jobId: string): Promise<number> {
    return this.redis.llen(key(jobId));
  }
}
