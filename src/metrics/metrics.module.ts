import { Global, Logger, Module, type OnModuleInit } from '@nestjs/common';
import { isTerminal } from '../jobs/job-types.js';
import { JobQueues } from '../jobs/queues.js';
import { StateChanges, type StateChange } from '../jobs/state-changes.js';
import { jobDuration, jobsTotal, setQueueDepthSource } from './metrics.js';

/**
 * Feeds job state changes into the metrics and the log: one JSON line per transition
 * with job_id, action, tenant and state; the `queued` line also has the submitting
 * request's request_id (the same id as its request log line and x-request-id).
 */
@Global()
@Module({})
export class MetricsModule implements OnModuleInit {
  private readonly logger = new Logger('Jobs');

  constructor(
    private readonly changes: StateChanges,
    private readonly queues: JobQueues,
  ) {}

  onModuleInit(): void {
    setQueueDepthSource(() => this.queues.counts());
    this.changes.observe((change) => this.record(change));
  }

  private record(change: StateChange): void {
    jobsTotal.inc({ action: change.action, state: change.state });
    const seconds = change.startedAt && isTerminal(change.state) ? (Date.now() - Date.parse(change.startedAt)) / 1000 : undefined;
    if (seconds !== undefined && seconds >= 0) jobDuration.observe({ action: change.action, state: change.state }, seconds);
    const error = (change.data.error as { code?: string } | undefined)?.code;
    this.logger.log({
      msg: `job ${change.id} ${change.state}`,
      job_id: change.id,
      action: change.action,
      tenant: change.tenant,
      state: change.state,
      ...(seconds !== undefined ? { duration_ms: Math.round(seconds * 1000) } : {}),
      ...(error ? { error_code: error } : {}),
      ...(change.data.request_id ? { request_id: change.data.request_id } : {}),
      ...(change.data.recovered ? { recovered: true } : {}),
      ...(change.data.requeued ? { requeued: true } : {}),
    });
  }
}
