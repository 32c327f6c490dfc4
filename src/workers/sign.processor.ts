import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { signImage, type SigningDeps } from './sign-stage.js';

/** sign: cosign, key-based, by digest. */
export class SignProcessor implements ActionProcessor<'sign'> {
  readonly action = 'sign' as const;
  constructor(private readonly deps: SigningDeps) {}

  process(ctx: JobContext<'sign'>): Promise<Partial<JobResult>> {
    return signImage(this.deps, ctx.job.request.image, ctx.job.request.key, ctx);
  }
}
