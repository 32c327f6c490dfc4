import { join } from 'node:path';
import type { AppConfig } from '../config/config.js';
import { BuildProgress, isDockerfileStep, type StepEvent } from '../engines/buildkit/build-progress.js';
import { BuildSpecError, tenantCacheSalt, type BuildSpec } from '../engines/buildkit/build-command.js';
import type { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { lastLine, ProcessError, toolEnv } from '../engines/process-runner.js';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import { dockerConfigDir } from '../engines/registry/docker-config.js';
import type { BuildRequest } from '../jobs/actions.js';
import { JobFailure, toInspectFailure } from '../jobs/job-failure.js';
import type { JobResult } from '../jobs/job-types.js';
import { resolveSources } from './build-sources.js';
import { resolveBuildSecrets } from './build-secrets.js';
import type { TenantSecrets } from '../secrets/tenant-secrets.js';
import { runPipeline, type PipelineDeps, type Stage } from './build-pipeline.js';
import { planPipeline } from './sbom-stage.js';
import { checkBuiltPlatforms, type BuildPlatformCheck } from './platform-stage.js';
import type { ActionProcessor, JobContext } from './processor.js';

/** Without a caller's SOURCE_DATE_EPOCH, timestamps are 0: the same build gives the same digest. */
const DEFAULT_SOURCE_DATE_EPOCH = '0';

export interface BuildDeps {
  buildkit: BuildkitClient;
  inspector: ImageInspector;
  uploadDir: (digest: string) => Promise<string>;
  /** An uploaded context's size and file count, reported in the result as `context`. */
  uploadStats?: (digest: string) => Promise<{ bytes: number; files: number }>;
  config: Pick<AppConfig, 'contextRoot' | 'buildSecrets' | 'insecureRegistries' | 'registryAuthFile' | 'defaultPipeline'>;
  /** Tenant build secrets (PUT /v1/secrets), looked up before server-configured ones. */
  tenantSecrets?: Pick<TenantSecrets, 'resolve'>;
  /** What the stages a build request may chain after itself (scan, sign, copy) use. */
  pipeline: PipelineDeps;
}

/** build: BuildKit through buildctl, steps and logs streamed as job events. */
export class BuildProcessor implements ActionProcessor<'build'> {
  readonly action = 'build' as const;

  constructor(private readonly deps: BuildDeps) {}

  async process(ctx: JobContext<'build'>): Promise<Partial<JobResult>> {
    const request = ctx.job.request;
    const started = Date.now();
    const secrets = await resolveBuildSecrets(request.secrets ?? [], ctx.job.tenant, {
      tenantSecrets: this.deps.tenantSecrets,
      buildSecrets: this.deps.config.buildSecrets,
    });
    // A RUN step may print a mounted secret: its value is `***` in everything this job writes.
    ctx.maskSecrets?.(secrets.values);
    const sources = await resolveSources(request, { uploadDir: this.deps.uploadDir, contextRoot: this.deps.config.contextRoot });
    try {
      // What reached the server: lets a client see that its .dockerignore did its work.
      const upload = request.context && 'upload' in request.context ? request.context.upload : undefined;
      const context = upload && this.deps.uploadStats ? await this.deps.uploadStats(upload) : undefined;
      const spec = this.spec(request, sources, join(sources.scratch, 'metadata.json'), secrets.specs, tenantCacheSalt(ctx.job.tenant));
      const progress = new BuildProgress();
      // A remote context's fetch and parse errors can quote what was fetched (a registry
      // catalog, an internal page): for those, steps outside the Dockerfile report no detail.
      const remote = !!request.context && 'git' in request.context;
      const publicStep = (s: StepEvent) => toPublicStep(s, remote);
      // Events are written in order, one after another, while buildctl keeps streaming.
      let emitting = Promise.resolve();
      const emit = (work: () => Promise<void>): void => {
        emitting = emitting.then(work).catch(() => undefined);
      };
      const onProgressLine = (line: string) => {
        const { steps, logs, warnings } = progress.feed(line);
        for (const step of steps) emit(() => ctx.emit('step', { step: publicStep(step) }));
        for (const log of logs) emit(() => ctx.log(log.line, log.stream, { step_id: log.step_id }));
        // BuildKit's warnings (lint checks, a base image of another platform): new ones only, capped.
        for (const warning of warnings) emit(() => ctx.emit('warning', { ...warning }));
      };
      const forPlatforms = spec.platforms.length ? ` for ${spec.platforms.join(', ')}` : '';
      await ctx.progress(`building ${spec.tags.length ? spec.tags.join(', ') : '(no tags)'}${forPlatforms}`);
      // The build pushes its tags itself (buildctl's image exporter): the last point to stop a
      // run that has lost the job before anything reaches the registry.
      if (spec.push) await ctx.fence(`build and push of ${spec.tags.join(', ')}`);
      let meta;
      try {
        meta = await this.deps.buildkit.build(spec, { signal: ctx.signal, env: this.buildEnv(spec, secrets.env), onProgressLine });
      } catch (err) {
        for (const log of progress.flush()) emit(() => ctx.log(log.line, log.stream, { step_id: log.step_id }));
        await emitting;
        throw this.failure(err, progress, remote);
      }
      for (const log of progress.flush()) emit(() => ctx.log(log.line, log.stream, { step_id: log.step_id }));
      await emitting;
      try {
        return await this.afterBuild(ctx, spec, meta, progress, started, context);
      } catch (err) {
        // A failure after the build (platform check, pipeline) still tells what BuildKit warned about.
        const { warnings } = progress.warnings();
        if (err instanceof JobFailure && warnings.length) err.details.warnings ??= warnings;
        throw err;
      }
    } finally {
      await sources.cleanup();
    }
  }

  private async afterBuild(
    ctx: JobContext<'build'>,
    spec: BuildSpec,
    meta: Awaited<ReturnType<BuildkitClient['build']>>,
    progress: BuildProgress,
    started: number,
    context: { bytes: number; files: number } | undefined,
  ): Promise<Partial<JobResult>> {
    const request = ctx.job.request;
    const summary = progress.summary();
    let image_info: Record<string, unknown> = {};
    let platform_check: BuildPlatformCheck | undefined;
    if (spec.push && meta.digest && spec.tags[0]) {
      const ref = parseImageReference(spec.tags[0]);
      const pinned = formatImageReference({ registry: ref.registry, repository: ref.repository, digest: meta.digest });
      try {
        image_info = (await this.deps.inspector.inspect(
          pinned,
          spec.platforms.length === 1 ? spec.platforms[0] : undefined,
        )) as unknown as Record<string, unknown>;
      } catch (err) {
        throw toInspectFailure(err);
      }
      await ctx.progress(`checking the binaries of every platform of ${pinned}`);
      platform_check = await checkBuiltPlatforms(this.deps.pipeline.registries, pinned, ctx.signal);
    }
    const result: Partial<JobResult> = {
      image_info,
      build: {
        duration_ms: Date.now() - started,
        digest: meta.digest ?? null,
        steps: summary.steps,
        cache_hits: summary.cache_hits,
        ...progress.warnings(),
        ...(platform_check ? { platform_check } : {}),
      },
      tags: spec.push ? spec.tags : [],
      ...(context ? { context } : {}),
    };
    // The server's default stages (SBOM, signature) apply to every build that pushes.
    const plan = planPipeline(request, this.deps.config.defaultPipeline);
    // Reported (result.pipeline) whenever the policy has a default stage or the request opted out of one.
    const policy = this.deps.config.defaultPipeline;
    const defaults =
      spec.push && (policy.sbom !== 'off' || policy.sign !== 'off' || request.sbom !== undefined || request.sign !== undefined);
    if (!request.scan && !request.sign && !request.push_to && !defaults) return result;
    if (!meta.digest || !spec.tags[0]) throw new JobFailure('INTERNAL', 'the build pipeline is not available');
    const ref = parseImageReference(spec.tags[0]);
    const stages: Stage[] = [{ name: 'build', state: 'succeeded', duration_ms: Date.now() - started }];
    const piped = await runPipeline(
      ctx,
      formatImageReference({ registry: ref.registry, repository: ref.repository, digest: meta.digest }),
      result,
      stages,
      this.deps.pipeline,
      plan,
    );
    return { ...piped, stages };
  }

  private spec(
    request: BuildRequest,
    sources: Awaited<ReturnType<typeof resolveSources>>,
    metadataFile: string,
    secrets: BuildSpec['secrets'],
    cacheSalt: string,
  ): BuildSpec {
    const tags = request.tags ?? (request.registry && request.image ? [`${request.registry}/${request.image}`] : []);
    const push = request.push ?? tags.length > 0;
    // BuildKit v0.32.2 fails a git context with a subdir when SOURCE_DATE_EPOCH is set
    // (it removes the checkout before reading the commit time), so no default there.
    const gitSubdir = !!request.context && 'git' in request.context && !!request.context.subdir;
    const buildArgs: Record<string, string> = {
      ...(gitSubdir ? {} : { SOURCE_DATE_EPOCH: DEFAULT_SOURCE_DATE_EPOCH }),
      ...(request.build_args ?? {}),
    };
    const firstTag = tags[0] ? parseImageReference(tags[0]) : undefined;
    const epoch = buildArgs.SOURCE_DATE_EPOCH === undefined ? NaN : Number(buildArgs.SOURCE_DATE_EPOCH);
    return {
      context: sources.context,
      dockerfileDir: sources.dockerfileDir,
      dockerfileName: sources.dockerfileName,
      target: request.target,
      buildArgs,
      platforms: request.platforms ?? [],
      tags,
      push,
      labels: request.labels ?? {},
      cacheRef: request.cache !== false && firstTag && push ? `${firstTag.registry}/${firstTag.repository}:buildcache` : undefined,
      noCache: request.no_cache ?? false,
      secrets,
      provenance: request.provenance ?? true,
      annotations: {
        ...(Number.isFinite(epoch) ? { 'org.opencontainers.image.created': new Date(epoch * 1000).toISOString() } : {}),
        ...(request.context && 'git' in request.context
          ? {
              'org.opencontainers.image.source': request.context.git,
              ...(request.context.ref && /^[0-9a-f]{40}$/.test(request.context.ref)
                ? { 'org.opencontainers.image.revision': request.context.ref }
                : {}),
            }
          : {}),
      },
      insecureRegistries: this.deps.config.insecureRegistries,
      metadataFile,
      cacheSalt,
    };
  }

  /**
   * buildctl gets the minimal tool environment, plus only the env vars that back requested
   * secrets: server-configured ones from this process's env, tenant ones decrypted for this build.
   */
  private buildEnv(spec: BuildSpec, tenantSecretEnv: Record<string, string>): NodeJS.ProcessEnv {
    const env = toolEnv();
    // Registry credentials (STEVEDORE_REGISTRY_AUTH_FILE as a config.json, e.g. serve's
    // for its embedded registry): buildctl hands them to buildkitd through its session.
    const dockerConfig = dockerConfigDir(this.deps.config.registryAuthFile);
    if (dockerConfig) env.DOCKER_CONFIG = dockerConfig;
    for (const s of spec.secrets) if (s.env) env[s.env] = tenantSecretEnv[s.env] ?? process.env[s.env];
    return env;
  }

  private failure(err: unknown, progress: BuildProgress, remote: boolean): unknown {
    if (err instanceof BuildSpecError) return new JobFailure('INVALID_BUILD', err.message);
    if (!(err instanceof ProcessError) || err.kind !== 'exit') return err; // cancel, timeout: the runner's
    const failed = progress.failure();
    if (remote && !(failed && isDockerfileStep(failed.step))) {
      return new JobFailure(
        'CONTEXT_FETCH_FAILED',
        `the build failed before any Dockerfile step ran: the git context could not be fetched, is not a git ` +
          `repository, or its Dockerfile could not be read (details withheld: they may quote the fetched content)`,
        false,
      );
    }
    // BuildKit's warnings often say why (InvalidBaseImagePlatform): they go with the failure.
    const { warnings } = progress.warnings();
    const warned = warnings.length ? { warnings } : {};
    if (failed) {
      return new JobFailure(
        'BUILD_FAILED',
        `step ${failed.step} failed: ${failed.error ?? lastLine(err.stderrTail, isProgressLine)}`,
        false,
        { step: failed.step, step_id: failed.step_id, error: failed.error ?? null, logs: failed.logs, ...warned },
      );
    }
    return new JobFailure('BUILD_FAILED', `build failed: ${lastLine(err.stderrTail, isProgressLine) || err.message}`, false, {
      logs: err.stderrTail
        .split('\n')
        .filter((l) => !isProgressLine(l))
        .slice(-50),
      ...warned,
    });
  }
}

const toPublicStep = (s: StepEvent, remote: boolean) => {
  const error = s.error && remote && !isDockerfileStep(s.name) ? 'failed (details withheld: a remote context)' : s.error;
  return { id: s.id, name: s.name, state: s.state, cached: s.cached, duration_ms: s.duration_ms, ...(error ? { error } : {}) };
};

/** buildctl's rawjson progress on stderr, as opposed to what it says about a failure. */
const isProgressLine = (line: string) => line.startsWith('{');
