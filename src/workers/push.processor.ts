import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { pushImage } from './push-stage.js';

/** push: copies an image, all platforms with its signatures and attestations, to each destination. */
export class PushProcessor implements ActionProcessor<'push'> {
  readonly action = 'push' as const;
  constructor(private readonly registries: RegistryResolver) {}

  async process(ctx: JobContext<'push'>): Promise<Partial<JobResult>> {
    const { image, destinations, registry } = ctx.job.request;
    const source = parseImageReference(image);
    // The seed's form: the same repository and tag under another registry.
    const targets = destinations ?? [
      formatImageReference({ registry: registry!, repository: source.repository, tag: source.tag, digest: source.digest }),
    ];
    return pushImage(this.registries, image, targets, ctx);
  }
}
