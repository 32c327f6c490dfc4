import type { ImageVerdict } from '../catalogue/image-verdict.js';
import type { VerdictService } from '../catalogue/verdict-service.js';
import { JobFailure } from '../jobs/job-failure.js';
import { parseImageReference } from '../oci/references.js';
import type { PolicySnapshot } from '../policies/policy.schema.js';
import type { StageContext } from './processor.js';

/** What a sign or push request carries when it names a policy (admission adds the snapshot). */
export interface GatedRequest {
  image: string;
  policy?: string;
  policy_snapshot?: PolicySnapshot;
}

/**
 * Before a sign or a push that names a policy: the verdict of that policy on the digest
 * about to be signed or copied, from the catalogue's latest scan (the same answer as GET
 * /v1/images/{digest}/verdict, with the snapshot admission recorded). A failed verdict
 * — any rule, a scan older than max_scan_age, no scan at all — fails the job with
 * POLICY_FAILED before the side effect; its details name the failed rules and the
 * scan's age. Undefined when the request names no policy: no gate.
 */
export function verdictGate(
  verdicts: Pick<VerdictService, 'judge'>,
  job: { tenant: string; request: GatedRequest },
  doing: 'signing' | 'copying',
  ctx: StageContext,
): ((digest: string) => Promise<void>) | undefined {
  const { policy, policy_snapshot: snapshot, image } = job.request;
  if (!policy) return undefined;
  return async (digest) => {
    if (!snapshot) throw new JobFailure('POLICY_NOT_FOUND', `policy ${policy} was not resolved when the job was admitted`);
    const ref = parseImageReference(image);
    const verdict = await verdicts.judge(job.tenant, digest, snapshot, `${ref.registry}/${ref.repository}`);
    if (verdict.passed) {
      await ctx.progress(`policy ${snapshot.name} (version ${snapshot.version}) passed on ${digest}: ${scanLine(verdict)}`);
      return;
    }
    const why = `${verdict.rules_failed.join(', ')}; ${scanLine(verdict)}`;
    throw new JobFailure(
      'POLICY_FAILED',
      `policy ${snapshot.name} failed on ${digest} (${why}): nothing was ${doing === 'signing' ? 'signed' : 'copied'}`,
      false,
      {
        digest,
        rules_failed: verdict.rules_failed,
        violations: verdict.violations,
        scan_job_id: verdict.scan_job_id,
        scanned_at: verdict.scanned_at,
        scan_age_seconds: verdict.scan_age_seconds,
        policy: verdict,
      },
    );
  };
}

function scanLine(v: ImageVerdict): string {
  if (v.scan_age_seconds === null) return 'no scan on record';
  return `latest scan ${v.scanned_at}, ${formatAge(v.scan_age_seconds)} old`;
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}
