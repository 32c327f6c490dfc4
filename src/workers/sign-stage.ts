import type { CosignClient } from '../engines/cosign/cosign-client.js';
import { SigningKeyError, type SigningKeys } from '../engines/cosign/signing-keys.js';
import { lastLine, ProcessError } from '../engines/process-runner.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import type { StageContext } from './processor.js';

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
export async function keyAndDigest(deps: SigningDeps, image: string, keyName: string | undefined, doing: string, ctx: StageContext) {
  const key = signingKey(deps.keys, keyName);
  const { pinned, digest } = await pinImage(deps.inspector, image);
  await ctx.progress(`${doing} ${pinned} with key ${key.name}`);
  return { key, pinned, digest };
}

/** One platform manifest of an index: what recursive signing signs and verify checks. */
export interface PlatformManifest {
  platform: string;
  digest: string;
}

/**
 * The platform manifests of an index (BuildKit's attestation manifests, unknown/unknown,
 * left out as the inspector does), or undefined for a single-platform image. Asked of
 * the inspector one platform at a time: it resolves each platform to its manifest.
 */
export async function platformManifests(inspector: ImageInspector, pinned: string): Promise<PlatformManifest[] | undefined> {
  const inspect = (platform?: string) =>
    inspector.inspect(pinned, platform).catch((err: unknown) => {
      throw toInspectFailure(err);
    });
  const top = await inspect();
  if (top.manifest_digest === top.digest) return undefined;
  const platforms: PlatformManifest[] = [];
  for (const platform of top.platforms) platforms.push({ platform, digest: (await inspect(platform)).manifest_digest });
  return platforms;
}

/**
 * Signs the image's digest with cosign (key-based); `keyName` absent: the default key.
 * An index is signed recursively: the index and each platform manifest, since a client
 * pulling one platform checks that platform's manifest digest, not the index's.
 * `gate` (a sign job's `policy`, verdict-gate.ts) is asked about the resolved digest
 * before anything is signed, and throws to stop it.
 */
export async function signImage(
  deps: SigningDeps,
  image: string,
  keyName: string | undefined,
  ctx: StageContext,
  gate?: (digest: string) => Promise<void>,
) {
  const { key, pinned, digest } = await keyAndDigest(deps, image, keyName, 'signing', ctx);
  await gate?.(digest);
  const platforms = await platformManifests(deps.inspector, pinned);
  if (platforms) await ctx.progress(`signing the index and its platform manifests: ${platforms.map((p) => p.platform).join(', ')}`);
  await ctx.fence(`signature of ${pinned}`);
  try {
    await deps.cosign.sign(pinned, key, ctx.signal, { recursive: !!platforms });
  } catch (err) {
    if (err instanceof ProcessError && err.kind === 'exit')
      throw new JobFailure('SIGN_FAILED', `cosign could not sign ${pinned}: ${lastLine(err.stderrTail)}`);
    throw err;
  }
  return { signed: { reference: pinned, digest, key: key.name, ...(platforms ? { platforms } : {}) } };
}
