import type { Action } from '../jobs/actions.js';
import type { JobRecord, JobResult } from '../jobs/job-types.js';

/**
 * What a stage gets from the job running it (scan, sign and push run as their own
 * actions' jobs and inside a build's pipeline): its abort signal and progress events.
 */
export interface StageContext {
  /** Aborts on timeout, cancel or shutdown. */
  signal: AbortSignal;
  progress(message: string, extra?: Record<string, unknown>): Promise<void>;
  /**
   * Called right before a side effect outside the job's own record (a push, a signature,
   * an attestation): throws, and aborts the job, when this run no longer owns the job
   * (its lock lapsed and another worker took it over). See Fencing in job-runner.ts.
   */
  fence(what: string): Promise<void>;
}

/** What a processor gets: its job, an abort signal (timeout or cancel) and event sinks. */
export interface JobContext<A extends Action> extends StageContext {
  job: JobRecord<A>;
  log(line: string, stream?: 'stdout' | 'stderr', fields?: Record<string, unknown>): Promise<void>;
  /** Any other event of the job's log (a build's `step` and `warning` events). */
  emit(type: 'step' | 'progress' | 'log' | 'warning', data: Record<string, unknown>): Promise<void>;
  /**
   * Values this job must never write (the build secrets it mounted): from now on they
   * are `***` in its events, result and error (see SecretMasker).
   */
  maskSecrets?(values: Iterable<string>): void;
}

/** One per action, in its own file (src/workers/<action>.processor.ts), built in workers/processors.ts. */
export interface ActionProcessor<A extends Action> {
  readonly action: A;
  process(ctx: JobContext<A>): Promise<Partial<JobResult>>;
}

/** A processor of any action. */
export type AnyProcessor = { [A in Action]: ActionProcessor<A> }[Action];
