import { copyImage } from '../engines/registry/image-copy.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import { JobFailure } from '../jobs/job-failure.js';
import type { StageContext } from './processor.js';

/**
 * Copies an image, all platforms with its signatures and attestations, to each of
 * `targets` (full references). Every destination is tried; any failure fails the whole.
 */
export async function pushImage(registries: RegistryResolver, image: string, targets: readonly string[], ctx: StageContext) {
  const source = parseImageReference(image);
  const pushed: { reference: string; digest: string }[] = [];
  const failed: { reference: string; error: string }[] = [];
  for (const target of targets) {
    ctx.signal.throwIfAborted();
    const dest = parseImageReference(target);
    await ctx.fence(`copy to ${formatImageReference(dest)}`);
    try {
      await ctx.progress(`copying ${formatImageReference(source)} to ${formatImageReference(dest)}`);
      const digest = await copyImage(
        { client: registries.clientFor(source.registry), repository: source.repository },
        { client: registries.clientFor(dest.registry), repository: dest.repository },
        source.digest ?? source.tag!,
        dest.digest ? undefined : dest.tag,
      );
      if (dest.digest && dest.digest !== digest) throw new Error(`destination pins ${dest.digest} but the image is ${digest}`);
      pushed.push({ reference: formatImageReference({ ...dest, digest: undefined }), digest });
    } catch (err) {
      failed.push({ reference: target, error: (err as Error).message });
    }
  }
  if (failed.length)
    throw new JobFailure(
      'PUSH_FAILED',
      `${failed.length} of ${targets.length} destinations failed: ${failed.map((f) => `${f.reference}: ${f.error}`).join('; ')}`,
      false,
      { pushed, failed },
    );
  return { pushed };
}
