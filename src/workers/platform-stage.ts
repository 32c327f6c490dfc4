import { checkImagePlatformsInChild, checkPlatformInChild } from '../engines/registry/analysis-runner.js';
import type { PlatformCheck } from '../engines/registry/platform-check.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import { parseImageReference } from '../oci/references.js';

/** How many mismatches a PLATFORM_MISMATCH failure lists (the total is always given). */
const LISTED = 50;

/** What a build reports when every platform passed. */
export interface BuildPlatformCheck {
  ok: true;
  files_checked: number;
  platforms: PlatformCheck[];
}

/**
 * After a pushed build: every platform of the result (each manifest of an index) must hold
 * only binaries for its platform; the first foreign file fails the job with PLATFORM_MISMATCH.
 */
export async function checkBuiltPlatforms(registries: RegistryResolver, pinned: string, signal: AbortSignal): Promise<BuildPlatformCheck> {
  const ref = parseImageReference(pinned);
  let checks: PlatformCheck[];
  try {
    checks = await checkImagePlatformsInChild(
      registries.clientFor(ref.registry),
      { repository: ref.repository, digest: ref.digest! },
      { signal, limit: LISTED },
    );
  } catch (err) {
    throw toInspectFailure(err);
  }
  const bad = checks.filter((c) => !c.ok);
  if (bad.length) throw mismatchFailure(bad);
  return { ok: true, files_checked: checks.reduce((sum, c) => sum + c.files_checked, 0), platforms: checks };
}

function mismatchFailure(bad: PlatformCheck[]): JobFailure {
  const first = bad[0]!;
  const file = first.mismatches[0]!;
  const total = bad.reduce((sum, c) => sum + c.mismatches_total, 0);
  const mismatches = bad.flatMap((c) => c.mismatches.map((m) => ({ platform: c.platform, ...m }))).slice(0, LISTED);
  const files = total === 1 ? '1 binary' : `${total} binaries`;
  return new JobFailure(
    'PLATFORM_MISMATCH',
    `${first.platform} image holds ${files} for another machine; the first, ${file.path}, is for ${file.machine}, ` +
      `added by layer ${file.layer_digest}` +
      (file.created_by ? ` (${file.created_by})` : ''),
    false,
    {
      mismatches,
      mismatches_total: total,
      platforms: bad.map((c) => ({ platform: c.platform, manifest_digest: c.manifest_digest, mismatches_total: c.mismatches_total })),
    },
  );
}

/**
 * inspect's check: the inspected platform manifest, or, for an index inspected without a
 * platform, every platform (`all`), the inspected one first among equals.
 */
export async function checkInspected(
  registries: RegistryResolver,
  info: {
    reference: string;
    digest: string;
    manifest_digest: string;
    os: string;
    architecture: string;
    variant?: string;
    platforms: string[];
  },
  all: boolean,
  signal: AbortSignal,
): Promise<{ platform_check: PlatformCheck; platform_checks?: PlatformCheck[] }> {
  const ref = parseImageReference(info.reference);
  const client = registries.clientFor(ref.registry);
  try {
    if (all) {
      const checks = await checkImagePlatformsInChild(client, { repository: ref.repository, digest: info.digest }, { signal });
      const own = checks.find((c) => c.manifest_digest === info.manifest_digest) ?? checks[0]!;
      return { platform_check: own, platform_checks: checks };
    }
    const platform = [info.os || 'linux', info.architecture || 'amd64', info.variant].filter(Boolean).join('/');
    return {
      platform_check: await checkPlatformInChild(client, { repository: ref.repository, digest: info.manifest_digest }, platform, {
        signal,
      }),
    };
  } catch (err) {
    throw toInspectFailure(err);
  }
}
