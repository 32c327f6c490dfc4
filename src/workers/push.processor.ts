import type { VerdictService } from '../catalogue/verdict-service.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { pushImage } from './push-stage.js';
import { pinImage } from './sign-stage.js';
import { verdictGate } from './verdict-gate.js';

/** push: copies an image, all platforms with its signatures and attestations, to each destination. */
export class PushProcessor implements ActionProcessor<'push'> {
  readonly action = 'push' as const;
  constructor(
    private readonly registries: RegistryResolver,
    private readonly inspector: ImageInspector,
    private readonly verdicts: Pick<VerdictService, 'judge'>,
  ) {}

  async process(ctx: JobContext<'push'>): Promise<Partial<JobResult>> {
    const { image, destinations, registry } = ctx.job.request;
    const source = parseImageReference(image);
    // The seed's form: the same repository and tag under another registry.
    const targets = destinations ?? [
      formatImageReference({ registry: registry!, repository: source.repository, tag: source.tag, digest: source.digest }),
    ];
    const gate = verdictGate(this.verdicts, ctx.job, 'copying', ctx);
    if (!gate) return pushImage(this.registries, image, targets, ctx);
    // With a policy, the digest judged is the digest copied: the source is pinned first,
    // so a tag moved between the verdict and the copy cannot slip another image through.
    const { digest } = await pinImage(this.inspector, image);
    await gate(digest);
    return pushImage(this.registries, formatImageReference({ ...source, digest }), targets, ctx);
  }
}
