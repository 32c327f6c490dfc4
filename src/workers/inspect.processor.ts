import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { toInspectFailure } from '../jobs/job-failure.js';
import type { JobResult } from '../jobs/job-types.js';
import { checkInspected } from './platform-stage.js';
import type { ActionProcessor, JobContext } from './processor.js';

/**
 * inspect: manifest, config and layers of an image, read from its registry, and the
 * platform check (its layers streamed: are its binaries for the platform it says?).
 */
export class InspectProcessor implements ActionProcessor<'inspect'> {
  readonly action = 'inspect' as const;

  constructor(
    private readonly inspector: ImageInspector,
    private readonly registries: RegistryResolver,
  ) {}

  async process(ctx: JobContext<'inspect'>): Promise<Partial<JobResult>> {
    const { image, platform, platform_check } = ctx.job.request;
    await ctx.progress(`resolving ${image}`);
    try {
      const info = await this.inspector.inspect(image, platform);
      ctx.signal.throwIfAborted();
      await ctx.progress(`resolved ${info.reference} to ${info.digest}`, { digest: info.digest, layers: info.layers.length });
      if (platform_check === false) return { image_info: info as unknown as Record<string, unknown> };
      const all = !platform && info.digest !== info.manifest_digest;
      await ctx.progress(`checking the binaries of ${all ? info.platforms.join(', ') : `${info.os}/${info.architecture}`}`);
      const checks = await checkInspected(this.registries, info, all, ctx.signal);
      return { image_info: info as unknown as Record<string, unknown>, ...checks };
    } catch (err) {
      throw toInspectFailure(err);
    }
  }
}
