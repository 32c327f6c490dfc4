import type { VerdictService } from '../catalogue/verdict-service.js';
import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { signImage, type SigningDeps } from './sign-stage.js';
import { verdictGate } from './verdict-gate.js';

/** sign: cosign, key-based, by digest; with `policy`, only when the digest's verdict passes. */
export class SignProcessor implements ActionProcessor<'sign'> {
  readonly action = 'sign' as const;
  constructor(
    private readonly deps: SigningDeps,
    private readonly verdicts: Pick<VerdictService, 'judge'>,
  ) {}

  process(ctx: JobContext<'sign'>): Promise<Partial<JobResult>> {
    const gate = verdictGate(this.verdicts, ctx.job, 'signing', ctx);
    return signImage(this.deps, ctx.job.request.image, ctx.job.request.key, ctx, gate);
  }
}
