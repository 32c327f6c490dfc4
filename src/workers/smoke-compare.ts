import type { SmokeRun } from '../engines/buildkit/smoke-run.js';

/** How much of each output the result shows (the comparison uses everything captured). */
const SHOWN_BYTES = 2048;

export interface SmokeVerdict {
  smoke_test: 'passed' | 'failed';
  reason: string;
}

/**
 * Whether the rewrite behaves like the original when both run their default command.
 *
 * Compared: the exit code and stdout, the program's result. Not stderr: it carries
 * diagnostics that differ between equivalent images (timestamps, PIDs, durations, tool
 * warnings such as pip's about its cache), so it is shown but not compared. A program
 * still running at the time limit is a server: both running passes, and their output
 * is not compared (how much a server printed by then depends on timing). One running
 * and the other exited, either failing to start, different exit codes or different
 * stdout fail. Both exiting with the same non-zero code and the same stdout pass: the
 * rewrite did not change what the program does, which is the question (the original
 * may need configuration the smoke test does not give it); the reason says so.
 */
export function compareSmokeRuns(original: SmokeRun, optimized: SmokeRun): SmokeVerdict {
  const failed = (reason: string): SmokeVerdict => ({ smoke_test: 'failed', reason });
  if (original.error) return failed(`the original did not start: ${original.error}`);
  if (optimized.error) return failed(`the rewrite did not start: ${optimized.error}`);
  if (original.timed_out && optimized.timed_out) return { smoke_test: 'passed', reason: 'both still running at the time limit' };
  if (original.timed_out) return failed(`the rewrite exited with code ${optimized.exit_code}; the original was still running`);
  if (optimized.timed_out) return failed(`the original exited with code ${original.exit_code}; the rewrite was still running`);
  if (original.exit_code !== optimized.exit_code)
    return failed(`exit codes differ: original ${original.exit_code}, rewrite ${optimized.exit_code}`);
  if (original.stdout !== optimized.stdout) return failed('stdout differs');
  return {
    smoke_test: 'passed',
    reason: original.exit_code === 0 ? 'same exit code (0) and stdout' : `both exited with code ${original.exit_code}, same stdout`,
  };
}

/** A run as the result shows it: outputs trimmed to their last SHOWN_BYTES. */
export function describeRun(run: SmokeRun): Record<string, unknown> {
  return {
    exit_code: run.exit_code,
    timed_out: run.timed_out,
    stdout: tail(run.stdout),
    stderr: tail(run.stderr),
    ...(run.stdout_truncated || run.stderr_truncated
      ? { output_truncated: { stdout: run.stdout_truncated, stderr: run.stderr_truncated } }
      : {}),
    ...(run.error ? { error: tail(run.error) } : {}),
  };
}

function tail(text: string): string {
  return text.length > SHOWN_BYTES ? `…${text.slice(-SHOWN_BYTES)}` : text;
}
