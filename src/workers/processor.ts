import type { AvailableAction, JobOf, JobResult } from '../jobs/job-types.js';

/** What a processor gets: its job, an abort signal (timeout or cancel) and event sinks. */
export interface JobContext<A extends AvailableAction> {
  job: JobOf<A>;
  signal: AbortSignal;
  progress(message: string, extra?: Record<string, unknown>): Promise<void>;
  log(line: string, stream?: 'stdout' | 'stderr', fields?: Record<string, unknown>): Promise<void>;
  /** Any other event of the job's log (a build's `step` events). */
  emit(type: 'step' | 'progress' | 'log', data: Record<string, unknown>): Promise<void>;
  /**
   * Values this job must never write (the build secrets it mounted): from now on they
   * are `***` in its events, result and error (see SecretMasker).
   */
  maskSecrets?(values: Iterable<string>): void;
}

/** One per action, in its own file: src/workers/<action>.processor.ts. */
export interface ActionProcessor<A extends AvailableAction> {
  readonly action: A;
  process(ctx: JobContext<A>): Promise<Partial<JobResult>>;
}

/** A failure with a stable code for clients; `retryable` lets BullMQ try again. */
export class JobFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}
