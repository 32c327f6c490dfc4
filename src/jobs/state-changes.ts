import type { JobState } from './job-types.js';

/** A state a job entered, for metrics and the transition log (action and tenant from its record). */
export interface StateChange {
  id: string;
  action: string;
  tenant: string;
  state: JobState;
  /** When the job started running (terminal states of jobs that ran). */
  startedAt?: string;
  data: Record<string, unknown>;
}
export type StateObserver = (change: StateChange) => void;

/**
 * Every state a job enters in this process, through whichever JobStore moved it: one
 * instance (a JobsModule provider) is handed to the API's store and the workers' (which
 * writes over its own connection, see WORKER_JOB_STORE), and metrics observes it.
 */
export class StateChanges {
  private readonly observers: StateObserver[] = [];

  observe(observer: StateObserver): void {
    this.observers.push(observer);
  }

  /** Observers run synchronously; their errors are swallowed. */
  publish(change: StateChange): void {
    for (const observer of this.observers) {
      try {
        observer(change);
      } catch {
        // metrics and logs must never break a job
      }
    }
  }
}
