import type { JobResult } from '../jobs/job-types.js';
import type { TenantEvents } from '../webhooks/tenant-events.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { publishRescanDiff, rescanDiff } from './rescan-diff.js';
import { scanImage, type ScanDeps, type ScanTarget } from './scan-stage.js';

/**
 * scan: Trivy against the image in its registry, findings normalised, gate evaluated.
 * A rescan (the server's own job, `origin.kind: rescan`) scans the stored SBOMs where it
 * has them, and is compared with the digest's previous scan: the diff is in its result
 * and, when findings came, went or changed severity, sent as `image.vulnerabilities.changed`.
 */
export class ScanProcessor implements ActionProcessor<'scan'> {
  readonly action = 'scan' as const;
  constructor(private readonly deps: ScanDeps & { events?: TenantEvents }) {}

  async process(ctx: JobContext<'scan'>): Promise<Partial<JobResult>> {
    const origin = ctx.job.origin;
    const target: ScanTarget = { ...ctx.job.request };
    if (origin?.kind === 'rescan' && origin.sbom)
      target.sbom_from = {
        job_id: origin.sbom.job_id,
        artifacts: Object.fromEntries(origin.sbom.platforms.map((p) => [p.digest, p.artifact])),
      };
    const outcome = await scanImage(this.deps, ctx.job, target, ctx);
    if (origin?.kind !== 'rescan') return outcome;
    const diff = await rescanDiff(this.deps.artifacts, origin, outcome.vulnerabilities).catch(() => undefined);
    if (!diff) {
      await ctx.progress(`no diff: the previous scan's reports (job ${origin.previous.job_id}) are gone`);
      return { ...outcome, diff: null };
    }
    const digest = typeof outcome.image_info.digest === 'string' ? outcome.image_info.digest : undefined;
    const events = this.deps.events ?? { publish: () => Promise.resolve() };
    await ctx.fence('image.vulnerabilities.changed');
    const sent = await publishRescanDiff(events, ctx.job, { reference: ctx.job.request.image, digest }, origin.db_updated_at, diff);
    await ctx.progress(
      `compared with scan ${origin.previous.job_id}: ${diff.counts.introduced} introduced, ${diff.counts.resolved} resolved, ` +
        `${diff.counts.severity_changed} re-rated${sent ? ' (image.vulnerabilities.changed sent)' : ''}`,
    );
    return { ...outcome, diff };
  }
}
