import { join } from 'node:path';
import type { DefaultPipeline } from '../config/config.js';
import { ScannerUnavailableError, TrivyScanError, type TrivyClient } from '../engines/trivy/trivy-client.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { BuildRequest } from '../jobs/actions.js';
import { scanArtifactNames, type ArtifactStore } from '../jobs/artifact-store.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { StageContext } from './processor.js';
import { platformManifests } from './sign-stage.js';

/**
 * What a pushed build gets besides what it asked for explicitly, from the server policy
 * (STEVEDORE_DEFAULT_PIPELINE) and the request's `sbom` / `sign`:
 * - `sbom`: an SBOM per platform manifest (the scan's when the request scans);
 * - `sign`: sign with the named or default key; `signRequired`: a missing key fails the
 *   job (the request asked for it, or the policy makes it mandatory) instead of skipping.
 * Admission refuses `false` for a mandatory stage; here it is enforced again, since a
 * worker may run with a stricter policy than the api that queued the job.
 */
export interface PipelinePlan {
  sbom: boolean;
  sign: boolean;
  signRequired: boolean;
  /** Why a default stage is off, for the result's `pipeline`. */
  sbomOff?: string;
  signOff?: string;
}

export function planPipeline(request: Pick<BuildRequest, 'sbom' | 'sign'>, policy: DefaultPipeline): PipelinePlan {
  const sbomOff = policy.sbom === 'required' ? undefined : request.sbom === false ? 'sbom: false' : undefined;
  const sbom = policy.sbom === 'required' || (request.sbom ?? policy.sbom === 'on');
  const signOff = policy.sign === 'required' ? undefined : request.sign === false ? 'sign: false' : undefined;
  const sign = policy.sign === 'required' || (request.sign === undefined ? policy.sign === 'on' : request.sign !== false);
  const signRequired = policy.sign === 'required' || (request.sign !== undefined && request.sign !== false);
  return {
    sbom,
    sign,
    signRequired,
    ...(!sbom ? { sbomOff: sbomOff ?? 'not in the server policy' } : {}),
    ...(!sign ? { signOff: signOff ?? 'not in the server policy' } : {}),
  };
}

/** One platform manifest's SBOM: the artifact file that holds it. */
export interface PlatformSbom {
  platform: string;
  manifest_digest: string;
  /** Artifact name: `sbom.cdx.json` for one platform, `sbom.cdx.<platform>.json` for several (as a scan names them). */
  sbom: string;
}

export interface SbomDeps {
  trivy: TrivyClient;
  inspector: ImageInspector;
  artifacts: ArtifactStore;
}

/**
 * A CycloneDX SBOM of every platform manifest of the pushed image (`pinned`), made by
 * Trivy from the registry without a vulnerability DB, stored as the job's artifacts.
 * One platform at a time, as a scan does: one Trivy run keeps the cores busy.
 */
export async function generateSboms(deps: SbomDeps, jobId: string, pinned: string, ctx: StageContext): Promise<PlatformSbom[]> {
  const ref = parseImageReference(pinned);
  const pin = (digest: string) => formatImageReference({ registry: ref.registry, repository: ref.repository, digest });
  let manifests = await platformManifests(deps.inspector, pinned);
  if (!manifests) {
    const info = await deps.inspector.inspect(pinned).catch((err: unknown) => {
      throw toInspectFailure(err);
    });
    manifests = [{ platform: [info.os, info.architecture, info.variant].filter(Boolean).join('/'), digest: info.manifest_digest }];
  }
  const names = scanArtifactNames(manifests.map((m) => m.platform));
  const dir = await deps.artifacts.prepare(jobId);
  const out: PlatformSbom[] = [];
  for (const [i, m] of manifests.entries()) {
    await ctx.progress(`generating the SBOM of ${m.platform} ${pin(m.digest)}`);
    try {
      await deps.trivy.generateSbom(pin(m.digest), join(dir, names[i]!.sbom), { signal: ctx.signal });
    } catch (err) {
      if (err instanceof TrivyScanError && err.notFound) throw new JobFailure('IMAGE_NOT_FOUND', err.message);
      if (err instanceof TrivyScanError || err instanceof ScannerUnavailableError)
        throw new JobFailure('SBOM_FAILED', `could not generate the SBOM of ${m.platform}: ${err.message}`);
      throw err;
    }
    out.push({ platform: m.platform, manifest_digest: m.digest, sbom: names[i]!.sbom });
  }
  return out;
}
