import { copyImage } from '../engines/registry/image-copy.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { formatImageReference, parseImageReference } from '../engines/references.js';
import type { JobResult } from '../jobs/job-types.js';
import { JobFailure, type ActionProcessor, type JobContext } from './processor.js';

/** push: copies an image, all platforms with its signatures and attestations, to each destination. */
export class PushProcessor implements ActionProcessor<'push'> {
  readonly action = 'push' as const;
  constructor(private readonly registries: RegistryResolver) {}

  async process(ctx: JobContext<'push'>): Promise<Partial<JobResult>> {
    const { image, destinations, registry } = ctx.job.request;
    const source = parseImageReference(image);
    // The seed's form: the same repository and tag under another registry.
    const targets = destinations ?? [formatImageReference({ registry: registry!, repository: source.repository, tag: source.tag, digest: source.digest })];
    const pushed: { reference: string; digest: string }[] = [];
    const failed: { reference: string; error: string }[] = [];
    for (const target of targets) {
      ctx.signal.throwIfAborted();
      const dest = parseImageReference(target);
      try {
        await ctx.progress(`copying ${formatImageReference(source)} to ${formatImageReference(dest)}`);
        const digest = await copyImage(
          { client: this.registries.clientFor(source.registry), repository: source.repository },
          { client: this.registries.clientFor(dest.registry), repository: dest.repository },
          source.digest ?? source.tag!,
          dest.digest ? undefined : dest.tag,
        );
        if (dest.digest && dest.digest !== digest) throw new Error(`destination pins ${dest.digest} but the image is ${digest}`);
        pushed.push({ reference: formatImageReference({ ...dest, digest: undefined }), digest });
      } catch (err) {
        failed.push({ reference: target, error: (err as Error).message });
      }
    }
    if (failed.length) throw new JobFailure('PUSH_FAILED', `${failed.length} of ${targets.length} destinations failed: ${failed.map((f) => `${f.reference}: ${f.error}`).join('; ')}`, false, { pushed, failed });
    return { pushed };
  }
}
