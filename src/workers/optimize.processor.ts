import { readFile, realpath } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { RegistryClient } from '../engines/registry/registry-client.js';
import type { ImageAnalysis } from '../engines/registry/image-analysis.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { parseImageReference } from '../oci/references.js';
import { rewriteDockerfile } from '../analysis/optimize/dockerfile-rewrite.js';
import { evaluateMeasuredTarget, evaluateTarget, parseSize } from '../analysis/optimize/target-size.js';
import type { OptimizeRequest } from '../jobs/actions.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import type { JobResult } from '../jobs/job-types.js';
import type { Suggestion } from '../analysis/dockerfile/index.js';
import { describeChanges, verifyRewrites, type RewriteDeps } from './optimize-rewrites.js';
import type { ActionProcessor, JobContext } from './processor.js';

export interface OptimizeDeps {
  analyzeDockerfile: (text: string, options: { ignore?: string[]; dockerignore?: string | null }) => Suggestion[];
  analyzeImage: (
    client: RegistryClient,
    repository: string,
    manifestDigest: string,
    options: { signal?: AbortSignal },
  ) => Promise<ImageAnalysis>;
  inspector: ImageInspector;
  registries: RegistryResolver;
  uploadDir: (digest: string) => Promise<string>;
  verify?: RewriteDeps;
}

/** optimize: Dockerfile findings, image layer analysis, the size target, a verified rewrite. */
export class OptimizeProcessor implements ActionProcessor<'optimize'> {
  readonly action = 'optimize' as const;
  constructor(private readonly deps: OptimizeDeps) {}

  async process(ctx: JobContext<'optimize'>): Promise<Partial<JobResult>> {
    const request = ctx.job.request;
    const result: Partial<JobResult> = {};
    const source = await this.dockerfile(request);
    let suggestions: Suggestion[] = [];
    if (source) {
      suggestions = this.deps.analyzeDockerfile(source.text, { ignore: request.ignore, dockerignore: source.dockerignore });
      const rewrite = rewriteDockerfile(source.text);
      Object.assign(result, { optimized_dockerfile: rewrite.dockerfile, rewrite_changes: rewrite.changes });
      await ctx.progress(`${suggestions.length} Dockerfile findings, ${rewrite.changes.length} safe rewrites`);
    }
    result.optimization_suggestions = suggestions;

    let currentBytes: number | undefined;
    if (request.image) {
      const info = await this.deps.inspector.inspect(request.image, request.platform).catch((err: unknown) => {
        throw toInspectFailure(err);
      });
      const ref = parseImageReference(request.image);
      await ctx.progress(`analysing ${info.layers.length} layers of ${info.reference}`);
      const analysis = await this.deps.analyzeImage(this.deps.registries.clientFor(ref.registry), ref.repository, info.manifest_digest, {
        signal: ctx.signal,
      });
      Object.assign(result, { image_info: info, image_analysis: analysis });
      currentBytes = analysis.size_bytes;
    }
    let measured: { label: string; size_bytes: number }[] | undefined;
    if (request.verify && source && result.optimized_dockerfile) {
      if (!this.deps.verify) throw new JobFailure('VERIFY_UNAVAILABLE', 'no build engine or scratch registry configured for verify');
      await ctx.progress('building the original and the rewrites');
      const verdict = await verifyRewrites(
        ctx.job,
        source.text,
        result.optimized_dockerfile as string,
        source.contextDir,
        this.deps.verify,
        ctx.signal,
        {
          platform: request.platform,
          commands: typeof request.verify === 'object' ? request.verify.commands : undefined,
          progress: (m) => ctx.progress(m),
        },
      ).catch((err: unknown) => {
        if (ctx.signal.aborted) throw err;
        throw new JobFailure('VERIFY_FAILED', `could not build both Dockerfiles: ${(err as Error).message.split('\n')[0]}`);
      });
      Object.assign(result, {
        verification: verdict.verification,
        optimized_dockerfile: verdict.best.dockerfile,
        rewrites: verdict.rewrites,
        base_images: verdict.base_images,
        stage_split: verdict.stage_split,
        changes: describeChanges(verdict, result.rewrite_changes as { line: number; change: string }[]),
      });
      currentBytes ??= verdict.verification.original_size_bytes;
      measured = verdict.rewrites
        .filter((r) => r.verified && r.size_bytes !== null)
        .map((r) => ({
          label: r.kind === 'safe' ? 'the safe rewrite' : `the multi-stage rewrite on ${r.base_image}`,
          size_bytes: r.size_bytes!,
        }));
    }
    if (request.target_size) {
      const target = parseSize(request.target_size);
      result.target =
        currentBytes === undefined
          ? {
              target_bytes: target,
              current_bytes: null,
              met: null,
              gap_bytes: null,
              closing: [],
              note: 'give an image or verify: true to measure the current size',
            }
          : measured
            ? evaluateMeasuredTarget(target, currentBytes, measured)
            : evaluateTarget(target, currentBytes, suggestions);
    }
    return result;
  }

  private async dockerfile(
    request: OptimizeRequest,
  ): Promise<{ text: string; dockerignore?: string | null; contextDir?: string } | undefined> {
    if (request.dockerfile_inline) return { text: request.dockerfile_inline };
    if (!request.context) return undefined;
    const dir = await realpath(await this.deps.uploadDir(request.context.upload));
    const file = resolve(dir, request.dockerfile_path ?? 'Dockerfile');
    const real = await realpath(file).catch(() => {
      throw new JobFailure('DOCKERFILE_NOT_FOUND', `${request.dockerfile_path ?? 'Dockerfile'} is not in the context`);
    });
    const rel = relative(dir, real);
    if (rel.startsWith('..') || rel.startsWith(sep)) throw new JobFailure('INVALID_CONTEXT', 'dockerfile_path leaves the context');
    const dockerignore = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => null);
    return { text: await readFile(real, 'utf8'), dockerignore, contextDir: dir };
  }
}
