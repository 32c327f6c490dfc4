import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { scanImage, type ScanDeps } from './scan-stage.js';

/** scan: Trivy against the image in its registry, findings normalised, gate evaluated. */
export class ScanProcessor implements ActionProcessor<'scan'> {
  readonly action = 'scan' as const;
  constructor(private readonly deps: ScanDeps) {}

  process(ctx: JobContext<'scan'>): Promise<Partial<JobResult>> {
    return scanImage(this.deps, ctx.job, ctx.job.request, ctx);
  }
}
