import type { JobRecord } from '../../jobs/job-types.js';
import { exitCodeForJob, gateFailure } from './exit-codes.js';
import type { ApiClient } from './http.js';
import { EventRenderer } from './render-events.js';
import { renderJobError, renderResult } from './render-results.js';
import { jobEvents } from './sse.js';
import type { Output } from './terminal.js';

/** What a shell reports for a command ended by Ctrl-C. */
const SIGINT_EXIT = 130;

export interface FollowOptions {
  json: boolean;
  /** Runs after a succeeded job (e.g. writes a file); its lines go to stderr. */
  after?: (result: Record<string, unknown>) => Promise<string[]>;
}

/**
 * Follows a job to its end: live progress on stderr (none with --json), then the
 * result on stdout (the job record as JSON with --json) and the exit code its final
 * state and gate give. Ctrl-C detaches; the job keeps running on the server.
 */
export async function followJob(client: ApiClient, jobId: string, io: Output, options: FollowOptions): Promise<number> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  try {
    const renderer = new EventRenderer(io.paintErr);
    try {
      for await (const event of jobEvents(client, jobId, abort.signal)) {
        if (!options.json) for (const line of renderer.render(event)) io.err(line);
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
      io.err(`detached: job ${jobId} keeps running (stevedore jobs watch ${jobId}; stevedore jobs cancel ${jobId})`);
      return SIGINT_EXIT;
    }
    const job = await client.request<JobRecord>('GET', `/v1/jobs/${encodeURIComponent(jobId)}`);
    return await finish(job, io, options);
  } finally {
    process.removeListener('SIGINT', onSigint);
  }
}

/** The final report of a finished job, and its exit code. */
export async function finish(job: JobRecord, io: Output, options: FollowOptions): Promise<number> {
  const code = exitCodeForJob(job);
  if (options.json) {
    io.out(JSON.stringify(job, null, 2));
  } else if (job.state === 'succeeded') {
    for (const line of renderResult(job.action, job.result, io.paintOut)) io.out(line);
    const gate = gateFailure(job);
    if (gate) io.err(io.paintErr.red(`error ${gate.code}: ${gate.message}`));
  } else {
    for (const line of renderJobError(job.action, job.error, io.paintErr)) io.err(line);
  }
  if (job.state === 'succeeded' && options.after) for (const line of await options.after(job.result ?? {})) io.err(line);
  return code;
}
