import type { ScanPolicy } from '../engines/trivy/scan-policy.js';

/**
 * The job model every action plugs into. A job's BullMQ payload is only its id; the
 * record below (request without secrets, state, result, error) lives in Redis.
 */
export const ACTIONS = ['build', 'scan', 'push', 'sign', 'verify', 'inspect', 'optimize'] as const;
export type Action = (typeof ACTIONS)[number];

export const TERMINAL_STATES = ['succeeded', 'failed', 'cancelled', 'timed_out'] as const;
export type TerminalState = (typeof TERMINAL_STATES)[number];
export type JobState = 'queued' | 'running' | TerminalState;
export const JOB_STATES: readonly JobState[] = ['queued', 'running', ...TERMINAL_STATES];

export const isTerminal = (state: JobState): state is TerminalState => (TERMINAL_STATES as readonly string[]).includes(state);

/** Fields every job request may carry besides its action's own. */
export interface CommonJobFields {
  /** Signed webhook on every terminal state (Standard Webhooks). */
  callback_url?: string;
  timeout_seconds?: number;
  /** A newer job of the same tenant with the same key supersedes (cancels) this one. */
  concurrency_key?: string;
}

export interface InspectRequest extends CommonJobFields {
  action: 'inspect';
  image: string;
  platform?: string;
}

export interface BuildRequest extends CommonJobFields {
  action: 'build';
  /** An uploaded context (POST /v1/contexts) or a git repository. */
  context?: { upload: string } | { git: string; ref?: string; subdir?: string };
  /** The Dockerfile text itself, with or without a context. */
  dockerfile_inline?: string;
  /** The Dockerfile inside the context (default `Dockerfile`), or under STEVEDORE_CONTEXT_ROOT without one. */
  dockerfile_path?: string;
  target?: string;
  build_args?: Record<string, string>;
  platforms?: string[];
  /** Full references to tag (and push); or the seed's registry + image. */
  tags?: string[];
  registry?: string;
  image?: string;
  push?: boolean;
  labels?: Record<string, string>;
  cache?: boolean;
  no_cache?: boolean;
  /** Secret names (the tenant's own, else STEVEDORE_BUILD_SECRETS), mounted with RUN --mount=type=secret,id=NAME. Never values. */
  secrets?: string[];
  provenance?: boolean;
  /** Pipeline after the build (needs a pushed image): scan with an optional gate, sign, copy. */
  scan?: Omit<ScanRequest, 'action' | 'image' | 'platform' | keyof CommonJobFields>;
  sign?: boolean | { key?: string };
  push_to?: string[];
}

export interface ScanRequest extends CommonJobFields {
  action: 'scan';
  image: string;
  platform?: string;
  scanners?: ('vuln' | 'secret')[];
  severity?: ('CRITICAL' | 'HIGH' | 'MEDIUM' | 'LOW' | 'UNKNOWN')[];
  ignore_unfixed?: boolean;
  policy?: ScanPolicy;
}

export interface SignRequest extends CommonJobFields {
  action: 'sign';
  image: string;
  /** A signing key's name (GET /v1/signing-keys); the default key when absent. */
  key?: string;
}

export interface VerifyRequest extends CommonJobFields {
  action: 'verify';
  image: string;
  key?: string;
}

export interface PushRequest extends CommonJobFields {
  action: 'push';
  image: string;
  /** Full references to copy to; or the seed's `registry` (same repository and tag there). */
  destinations?: string[];
  registry?: string;
}

export interface OptimizeRequest extends CommonJobFields {
  action: 'optimize';
  dockerfile_inline?: string;
  /** An uploaded context holding the Dockerfile (at dockerfile_path, default Dockerfile). */
  context?: { upload: string };
  dockerfile_path?: string;
  /** An image to analyse layer by layer (platform chosen from an index). */
  image?: string;
  platform?: string;
  /** e.g. 100MB, 1.5GiB, 800kB */
  target_size?: string;
  /** Rule ids to suppress. */
  ignore?: string[];
  /** Build the original and the rewrite, compare sizes and smoke-test both. */
  verify?: boolean;
}

/**
 * Requests by action: each has its schema (jobs/job-request.schema.ts) and a processor (workers/) of the
 * same name.
 */
export interface JobRequests {
  inspect: InspectRequest;
  build: BuildRequest;
  scan: ScanRequest;
  sign: SignRequest;
  verify: VerifyRequest;
  push: PushRequest;
  optimize: OptimizeRequest;
}
export type AvailableAction = keyof JobRequests;
export type JobRequest = JobRequests[AvailableAction];

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

export interface JobRecord<A extends AvailableAction = AvailableAction> {
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
}
export type JobOf<A extends AvailableAction> = JobRecord<A>;

export function emptyResult(): JobResult {
  return { image_info: {}, vulnerabilities: [], optimization_suggestions: [] };
}

/** Default time limit per action, in seconds (a request's timeout_seconds overrides it). */
export const DEFAULT_TIMEOUT_SECONDS: Record<Action, number> = {
  build: 3600,
  scan: 900,
  push: 900,
  sign: 300,
  verify: 300,
  inspect: 60,
  optimize: 900,
};
export const MAX_TIMEOUT_SECONDS = 24 * 3600;

export const DEFAULT_CONCURRENCY: Record<Action, number> = { build: 2, scan: 2, push: 4, sign: 4, verify: 4, inspect: 8, optimize: 2 };

/** Event types of a job's log, in the order a client sees them. */
export type JobEventType = 'state' | 'progress' | 'step' | 'log' | 'result';

export interface JobEvent {
  /** Redis stream id: monotonically increasing within a job. */
  id: string;
  type: JobEventType;
  /** Epoch milliseconds (fractional) when the event was written. */
  at: number;
  data: Record<string, unknown>;
}
