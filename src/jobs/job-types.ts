import type { Action, JobRequests } from './actions.js';

/**
 * The job model every action plugs into. A job's BullMQ payload is only its id; the
 * record below (request without secrets, state, result, error) lives in Redis. Actions,
 * their requests and settings are the rows of jobs/actions.ts.
 */
export { ACTIONS, type Action, type JobRequest, type JobRequests } from './actions.js';

export const TERMINAL_STATES = ['succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];
export type JobState = 'queued' | 'running' | TerminalState;
export const JOB_STATES: readonly JobState[] = ['queued', 'running', ...TERMINAL_STATES];

export const isTerminal = (state: JobState): state is TerminalState => (TERMINAL_STATES as readonly string[]).includes(state);

export interface JobError {
  code: string;
  message: string;
  details: Record<string, unknown>;
}

/** The seed's output keys are always present, empty when they do not apply. */
export interface JobResult {
  image_info: Record<string, unknown>;
  vulnerabilities: unknown[];
  optimization_suggestions: unknown[];
  [actionSpecific: string]: unknown;
}

export interface JobRecord<A extends Action = Action> {
  id: string;
  /** Who owns the job: only this tenant's keys can see or touch it. */
  tenant: string;
  action: A;
  state: JobState;
  request: JobRequests[A];
  result: JobResult | null;
  error: JobError | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  attempts: number;
  timeout_seconds: number;
  /** Set when a cancel was asked for a running job; the worker honours it. */
  cancel_requested?: boolean;
  /** Why: `CANCELLED` (asked) or `SUPERSEDED` (a newer job with its concurrency_key). */
  cancel_code?: 'CANCELLED' | 'SUPERSEDED';
  /** Set on jobs the server queued itself; absent on every job a client submitted. */
  origin?: RescanOrigin;
}

/**
 * A rescan (src/rescans): the server scans a catalogued digest again because Trivy's DB
 * changed. Written only by the server (no request field can set it), so the job ids and
 * artifact names below are always the tenant's own earlier jobs'.
 */
export interface RescanOrigin {
  kind: 'rescan';
  /** The DB this rescan is for (Trivy's UpdatedAt). */
  db_updated_at: string;
  /** The scan it is compared with: the digest's latest scan in the catalogue. */
  previous: { job_id: string; reports: string[]; db_updated_at: string | null; scanned_at: string };
  /** The digest's stored SBOMs (one per platform manifest): scanned instead of the image's layers. */
  sbom: { job_id: string; platforms: { platform: string; digest: string; artifact: string }[] } | null;
}

export function emptyResult(): JobResult {
  return { image_info: {}, vulnerabilities: [], optimization_suggestions: [] };
}

/**
 * Event types of a job's log, in the order a client sees them. `step` and `warning`
 * are a build's (its steps' state changes; BuildKit's own warnings, such as lint checks).
 */
export const JOB_EVENT_TYPES = ['state', 'progress', 'step', 'log', 'warning', 'result'] as const;
export type JobEventType = (typeof JOB_EVENT_TYPES)[number];

export interface JobEvent {
  /** Redis stream id: monotonically increasing within a job. */
  id: string;
  type: JobEventType;
  /** Epoch milliseconds (fractional) when the event was written. */
  at: number;
  data: Record<string, unknown>;
}
