import type { Redis } from 'ioredis';

/** One delivery attempt as `GET /v1/jobs/{id}/deliveries` (or a tenant event's delivery) lists it. */
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

const jobKey = (jobId: string) => `stv:job:${jobId}:deliveries`;
/** The list keeps the latest attempts only; a receiver failing for weeks of redeliveries stays bounded. */
const KEPT = 500;

/**
 * Attempts per delivery subject in Redis, kept as long as its record: a job (the default
 * keys), or a tenant event (TenantEventDeliveryLog).
 */
export class DeliveryLog {
  constructor(
    private readonly redis: Redis,
    private readonly retentionSeconds: number,
    private readonly key: (subject: string) => string = jobKey,
  ) {}

  /**
   * Appends an attempt, numbered by a counter rather than the list's length: a retry and
   * a redelivery of the same job may finish at once (and the list is trimmed).
   */
  async record(subject: string, entry: Omit<DeliveryAttempt, 'attempt'>): Promise<number> {
    const key = this.key(subject);
    const attempt = await this.redis.incr(`${key}:n`);
    await this.redis
      .multi()
      .rpush(key, JSON.stringify({ attempt, ...entry }))
      .ltrim(key, -KEPT, -1)
      .expire(key, this.retentionSeconds)
      .expire(`${key}:n`, this.retentionSeconds)
      .exec();
    return attempt;
  }

  async list(subject: string): Promise<DeliveryAttempt[]> {
    return (await this.redis.lrange(this.key(subject), 0, -1)).map((line) => JSON.parse(line) as DeliveryAttempt);
  }

  /** The latest attempt of each subject (null when none yet), in one round trip. */
  async latest(subjects: readonly string[]): Promise<(DeliveryAttempt | null)[]> {
    if (!subjects.length) return [];
    const pipeline = this.redis.pipeline();
    for (const subject of subjects) pipeline.lindex(this.key(subject), -1);
    const rows = (await pipeline.exec()) ?? [];
    return rows.map(([err, line]) => {
      if (err) throw err;
      return typeof line === 'string' ? (JSON.parse(line) as DeliveryAttempt) : null;
    });
  }
}

/**
 * The attempts of tenant events, keyed by tenant and event id (subject `tenant:eventId`;
 * neither can hold a colon), so one tenant's event id never reads another's log.
 */
export class TenantEventDeliveryLog extends DeliveryLog {
  constructor(redis: Redis, retentionSeconds: number) {
    super(redis, retentionSeconds, (subject) => `stv:tenant-event:${subject}:deliveries`);
  }
}

/** The TenantEventDeliveryLog subject of one event. */
export const eventSubject = (tenant: string, eventId: string) => `${tenant}:${eventId}`;
