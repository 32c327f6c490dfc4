import { ImageInspector, PlatformNotFoundError } from '../engines/registry/image-inspector.js';
import { RegistryError } from '../engines/registry/registry-errors.js';
import { InvalidReferenceError } from '../engines/references.js';
import type { JobResult } from '../jobs/job-types.js';
import { JobFailure, type ActionProcessor, type JobContext } from './processor.js';

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

/** Registry and reference errors as stable job error codes (shared with GET /v1/images/inspect). */
export function toInspectFailure(err: unknown): unknown {
  if (err instanceof RegistryError) {
    switch (err.kind) {
      case 'not_found':
        return new JobFailure('IMAGE_NOT_FOUND', err.message);
      case 'unauthorized':
        return new JobFailure('REGISTRY_UNAUTHORIZED', err.message);
      case 'unavailable':
        return new JobFailure('REGISTRY_UNAVAILABLE', err.message, true);
      // 'protocol' and 'forbidden' (a redirect, realm or DNS answer leading to an address
      // the server may not reach): the registry misbehaved, not the tenant.
      default:
        return new JobFailure('REGISTRY_ERROR', err.message);
    }
  }
  if (err instanceof PlatformNotFoundError) return new JobFailure('PLATFORM_NOT_FOUND', err.message, false, { platforms: err.available });
  if (err instanceof InvalidReferenceError) return new JobFailure('INVALID_REFERENCE', err.message);
  return err;
}
