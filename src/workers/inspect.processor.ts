import type { ImageInspector } from '../engines/registry/image-inspector.js';
import { toInspectFailure } from '../jobs/job-failure.js';
import type { JobResult } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';

/** inspect: manifest, config and layers of an image, read from its registry. */
export class InspectProcessor implements ActionProcessor<'inspect'> {
  readonly action = 'inspect' as const;

  constructor(private readonly inspector: ImageInspector) {}

  async process(ctx: JobContext<'inspect'>): Promise<Partial<JobResult>> {
    const { image, platform } = ctx.job.request;
    await ctx.progress(`resolving ${image}`);
    try {
      const info = await this.inspector.inspect(image, platform);
      ctx.signal.throwIfAborted();
      await ctx.progress(`resolved ${info.reference} to ${info.digest}`, { digest: info.digest, layers: info.layers.length });
      return { image_info: info as unknown as Record<string, unknown> };
    } catch (err) {
      throw toInspectFailure(err);
    }
  }
}
