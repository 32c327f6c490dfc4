import type { JobRecord } from '../../jobs/job-types.js';

/**
 * The client's exit codes: scripts and CI gates branch on these, so they are part of
 * the CLI's contract (listed in `stevedore help` and the README).
 */
export const EXIT = {
  OK: 0,
  JOB_FAILED: 1,
  USAGE: 2,
  POLICY: 3,
  CANCELLED: 4,
  UNREACHABLE: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODE_HELP = `exit codes:
  0  the job succeeded (and its gate passed)
  1  the job failed
  2  usage or validation error (the server answered 4xx)
  3  policy gate failed: a scan over its policy, a build pipeline's POLICY_FAILED,
     verify answering verified=false
  4  the job was cancelled or timed out
  5  the server is unreachable or answered 5xx`;

type FinalJob = Pick<JobRecord, 'action' | 'state' | 'result' | 'error'>;

/** Why a succeeded job still fails its gate (as an error code and message), or undefined when it passed. */
export function gateFailure(job: FinalJob): { code: string; message: string } | undefined {
  const result = (job.result ?? {}) as {
    policy?: { passed?: boolean; violations?: { rule: string }[] };
    verification?: { verified?: boolean; reason?: string };
  };
  // A standalone scan succeeds either way (the verdict is data); the CLI is the gate.
  if (job.action === 'scan' && result.policy && result.policy.passed === false) {
    const violations = result.policy.violations ?? [];
    return {
      code: 'POLICY_FAILED',
      message:
        `policy gate failed: ${violations.length} violation${violations.length === 1 ? '' : 's'} ` +
        `(${[...new Set(violations.map((v) => v.rule))].join(', ')})`,
    };
  }
  if (job.action === 'verify' && result.verification && result.verification.verified === false)
    return { code: 'NOT_VERIFIED', message: result.verification.reason ?? 'no valid signature' };
  return undefined;
}

/** The exit code for a job in its final state. */
export function exitCodeForJob(job: FinalJob): ExitCode {
  switch (job.state) {
    case 'succeeded':
      return gateFailure(job) ? EXIT.POLICY : EXIT.OK;
    case 'failed':
      // A build pipeline's gate fails the whole job with POLICY_FAILED.
      return job.error?.code === 'POLICY_FAILED' ? EXIT.POLICY : EXIT.JOB_FAILED;
    case 'cancelled':
    case 'timed_out':
      return EXIT.CANCELLED;
    default:
      // Not finished (queued/running): only `--no-wait` and `jobs get` see these, and they exit 0.
      return EXIT.OK;
  }
}

/** An HTTP status from the server: 4xx is the caller's mistake, everything else the server's. */
export function exitCodeForStatus(status: number): ExitCode {
  return status >= 400 && status < 500 ? EXIT.USAGE : EXIT.UNREACHABLE;
}
