import type { Redis } from 'ioredis';
import { keys } from './job-store.js';

/**
 * Carries "cancel job X" from whichever api process was asked to every worker
 * process; the one running X aborts it. Redis pub/sub: a worker that is not
 * subscribed at that instant still sees `cancel_requested` on the record.
 */
export class CancelBus {
  private subscriber?: Redis;

  constructor(private readonly redis: Redis) {}

  async publish(jobId: string): Promise<void> {
    await this.redis.publish(keys.cancelChannel, jobId);
  }

  async subscribe(onCancel: (jobId: string) => void): Promise<void> {
    this.subscriber = this.redis.duplicate({ enableOfflineQueue: true, maxRetriesPerRequest: null, commandTimeout: undefined });
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel: string, jobId: string) => onCancel(jobId));
    await this.subscriber.subscribe(keys.cancelChannel);
  }

  async close(): Promise<void> {
    this.subscriber?.disconnect();
  }
}
