import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { keyAndDigest, type SigningDeps } from './sign-stage.js';

/** verify: does the image carry a valid signature (and attestations) by the key? */
export class VerifyProcessor implements ActionProcessor<'verify'> {
  readonly action = 'verify' as const;
  constructor(private readonly deps: SigningDeps) {}

  async process(ctx: JobContext<'verify'>): Promise<Partial<JobResult>> {
    const { key, pinned, digest } = await keyAndDigest(this.deps, ctx.job.request.image, ctx.job.request.key, 'verifying', ctx);
    const verification = await this.deps.cosign.verify(pinned, key, ctx.signal);
    const attestations = [];
    for (const type of ['cyclonedx', 'vuln'] as const)
      attestations.push(await this.deps.cosign.verifyAttestation(pinned, key, type, ctx.signal));
    return { verification: { ...verification, reference: pinned, digest, key: key.name, attestations } };
  }
}
