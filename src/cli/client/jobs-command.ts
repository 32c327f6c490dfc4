import type { JobRecord } from '../../jobs/job-types.js';
import { COMMON_OPTIONS, int, noExtra, parse, positional, str, flag } from './args.js';
import { EXIT } from './exit-codes.js';
import { followJob } from './follow.js';
import { UsageError, type ApiClient } from './http.js';
import { renderJob, renderJobList } from './render-results.js';
import type { Output } from './terminal.js';

export const JOBS_USAGE = `usage: stevedore jobs <list|get|watch|cancel> [options]

  jobs list [--state S] [--action A] [--limit N]   the newest jobs first
  jobs get ID                                      one job: state, then result or error
  jobs watch ID                                    its events live; exits per its final state
  jobs cancel ID                                   cancel a queued or running job

options: --json (raw JSON on stdout), --url URL, -h/--help`;

const id = (positionals: string[]) => {
  const value = positional(positionals, 1, 'job ID', JOBS_USAGE);
  noExtra(positionals, 2);
  return encodeURIComponent(value);
};

export async function jobsCommand(argv: string[], makeClient: (url?: string) => ApiClient, io: Output): Promise<number> {
  const { values, positionals } = parse(argv, { state: { type: 'string' }, action: { type: 'string' }, limit: { type: 'string' } });
  const client = () => makeClient(str(values, 'url'));
  const sub = positionals[0];
  if (flag(values, 'help') || !sub) {
    (sub || flag(values, 'help') ? io.out : io.err)(JOBS_USAGE);
    return sub || flag(values, 'help') ? EXIT.OK : EXIT.USAGE;
  }
  for (const name of Object.keys(values)) {
    if (!(name in COMMON_OPTIONS) && sub !== 'list') throw new UsageError(`--${name} is only for jobs list`);
    if (name === 'no-wait' || name === 'timeout') throw new UsageError(`--${name} is not an option of jobs ${sub}`);
  }
  const json = flag(values, 'json');
  switch (sub) {
    case 'list': {
      noExtra(positionals, 1);
      const page = await client().request<{ items: JobRecord[]; next_cursor: string | null }>('GET', '/v1/jobs', {
        query: { state: str(values, 'state'), action: str(values, 'action'), limit: int(values, 'limit', 1) },
      });
      if (json) io.out(JSON.stringify(page, null, 2));
      else for (const line of renderJobList(page.items, io.paintOut)) io.out(line);
      return EXIT.OK;
    }
    case 'get': {
      const job = await client().request<JobRecord>('GET', `/v1/jobs/${id(positionals)}`);
      if (json) io.out(JSON.stringify(job, null, 2));
      else for (const line of renderJob(job, io.paintOut)) io.out(line);
      return EXIT.OK;
    }
    case 'watch':
      return followJob(client(), decodeURIComponent(id(positionals)), io, { json });
    case 'cancel': {
      const job = await client().request<JobRecord>('POST', `/v1/jobs/${id(positionals)}/cancel`);
      if (json) io.out(JSON.stringify(job, null, 2));
      else io.out(job.state === 'cancelled' ? `cancelled ${job.id}` : `cancelling ${job.id} (${job.state}; it stops shortly)`);
      return EXIT.OK;
    }
    default:
      throw new UsageError(`unknown jobs command ${JSON.stringify(sub)}`);
  }
}
