import type { SigningKey } from '../engines/cosign/signing-keys.js';
import type { JobResult } from '../jobs/job-types.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { keyAndDigest, platformManifests, type SigningDeps } from './sign-stage.js';

const ATTESTATION_TYPES = ['cyclonedx', 'vuln'] as const;
/** Platform manifests verified at once. */
const VERIFY_PARALLEL = 4;
type AttestationCheck = { type: string; verified: boolean; reason?: string };

/**
 * verify: does the image carry a valid signature (and attestations) by the key?
 * For an index: the index's signature, and each platform manifest's signature and
 * attestations (the pipeline attaches SBOM and vulnerability report per platform);
 * `verified` only when the index and every platform are signed. `attestations` at the
 * top then says, per type, whether every platform carries it.
 */
export class VerifyProcessor implements ActionProcessor<'verify'> {
  readonly action = 'verify' as const;
  constructor(private readonly deps: SigningDeps) {}

  async process(ctx: JobContext<'verify'>): Promise<Partial<JobResult>> {
    const { key, pinned, digest } = await keyAndDigest(this.deps, ctx.job.request.image, ctx.job.request.key, 'verifying', ctx);
    const platforms = await platformManifests(this.deps.inspector, pinned);
    const verification = await this.deps.cosign.verify(pinned, key, ctx.signal);
    const head = { reference: pinned, digest, key: key.name };
    if (!platforms) return { verification: { ...verification, ...head, attestations: await this.attestations(pinned, key, ctx.signal) } };

    await ctx.progress(`verifying the platform manifests: ${platforms.map((p) => p.platform).join(', ')}`);
    const repo = parseImageReference(pinned);
    // A few platforms side by side: each is three cosign runs that wait mostly on the
    // registry; an index may list up to 128 manifests, which must not start 384 at once.
    const checked: Awaited<ReturnType<typeof verifyOne>>[] = [];
    const verifyOne = async (p: { platform: string; digest: string }) => {
      const target = formatImageReference({ registry: repo.registry, repository: repo.repository, digest: p.digest });
      const signature = await this.deps.cosign.verify(target, key, ctx.signal);
      return {
        platform: p.platform,
        digest: p.digest,
        verified: signature.verified,
        ...(signature.reason ? { reason: signature.reason } : {}),
        attestations: await this.attestations(target, key, ctx.signal),
      };
    };
    for (let i = 0; i < platforms.length; i += VERIFY_PARALLEL)
      checked.push(...(await Promise.all(platforms.slice(i, i + VERIFY_PARALLEL).map(verifyOne))));
    const unsigned = checked.filter((p) => !p.verified);
    const reason = !verification.verified
      ? `the index is not signed: ${verification.reason}`
      : unsigned.length
        ? `platform manifests not signed by key ${key.name}: ${unsigned.map((p) => `${p.platform} ${p.digest} (${p.reason})`).join('; ')}`
        : undefined;
    const attestations = ATTESTATION_TYPES.map((type): AttestationCheck => {
      const missing = checked.filter((p) => !p.attestations.find((a) => a.type === type)?.verified);
      if (!missing.length) return { type, verified: true };
      const why = (p: (typeof checked)[number]) => p.attestations.find((a) => a.type === type)?.reason ?? 'not checked';
      return { type, verified: false, reason: missing.map((p) => `${p.platform}: ${why(p)}`).join('; ') };
    });
    return {
      verification: {
        verified: verification.verified && !unsigned.length,
        ...(reason ? { reason } : {}),
        signatures: verification.signatures,
        ...head,
        attestations,
        platforms: checked,
      },
    };
  }

  private async attestations(target: string, key: SigningKey, signal: AbortSignal): Promise<AttestationCheck[]> {
    const out: AttestationCheck[] = [];
    for (const type of ATTESTATION_TYPES) out.push(await this.deps.cosign.verifyAttestation(target, key, type, signal));
    return out;
  }
}
