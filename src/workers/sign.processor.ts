import type { CosignClient } from '../engines/cosign/cosign-client.js';
import { SigningKeyError, type SigningKeys } from '../engines/cosign/signing-keys.js';
import { ProcessError } from '../engines/process-runner.js';
import { formatImageReference, parseImageReference } from '../engines/references.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { JobResult } from '../jobs/job-types.js';
import { toInspectFailure } from './inspect.processor.js';
import { JobFailure, type ActionProcessor, type JobContext } from './processor.js';

export interface SigningDeps {
  cosign: CosignClient;
  keys: SigningKeys;
  inspector: ImageInspector;
}

/** A tag resolved to its digest: what gets signed or verified is always the digest. */
export async function pinImage(inspector: ImageInspector, image: string): Promise<{ pinned: string; digest: string }> {
  const digest = await inspector.resolveDigest(image).catch((err: unknown) => {
    throw toInspectFailure(err);
  });
  const ref = parseImageReference(image);
  return { pinned: formatImageReference({ registry: ref.registry, repository: ref.repository, digest }), digest };
}

export function signingKey(keys: SigningKeys, name?: string) {
  try {
    return keys.get(name);
  } catch (err) {
    if (err instanceof SigningKeyError) throw new JobFailure('SIGNING_KEY_UNAVAILABLE', err.message);
    throw err;
  }
}

/** What both sign and verify start from: the key, the image pinned to its digest, a progress line. */
async function start(deps: SigningDeps, ctx: JobContext<'sign' | 'verify'>, doing: string) {
  const key = signingKey(deps.keys, ctx.job.request.key);
  const { pinned, digest } = await pinImage(deps.inspector, ctx.job.request.image);
  await ctx.progress(`${doing} ${pinned} with key ${key.name}`);
  return { key, pinned, digest };
}

/** sign: cosign, key-based, by digest. */
export class SignProcessor implements ActionProcessor<'sign'> {
  readonly action = 'sign' as const;
  constructor(private readonly deps: SigningDeps) {}

  async process(ctx: JobContext<'sign'>): Promise<Partial<JobResult>> {
    const { key, pinned, digest } = await start(this.deps, ctx, 'signing');
    try {
      await this.deps.cosign.sign(pinned, key, ctx.signal);
    } catch (err) {
      if (err instanceof ProcessError && err.kind === 'exit') throw new JobFailure('SIGN_FAILED', `cosign could not sign ${pinned}: ${err.stderrTail.split('\n').filter((l) => l.trim()).pop() ?? ''}`);
      throw err;
    }
    return { signed: { reference: pinned, digest, key: key.name } };
  }
}

/** verify: does the image carry a valid signature (and attestations) by the key? */
export class VerifyProcessor implements ActionProcessor<'verify'> {
  readonly action = 'verify' as const;
  constructor(private readonly deps: SigningDeps) {}

  async process(ctx: JobContext<'verify'>): Promise<Partial<JobResult>> {
    const { key, pinned, digest } = await start(this.deps, ctx, 'verifying');
    const verification = await this.deps.cosign.verify(pinned, key, ctx.signal);
    const attestations = [];
    for (const type of ['cyclonedx', 'vuln'] as const) attestations.push(await this.deps.cosign.verifyAttestation(pinned, key, type, ctx.signal));
    return { verification: { ...verification, reference: pinned, digest, key: key.name, attestations } };
  }
}
