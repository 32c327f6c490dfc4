import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { pushedDockerfileSpec, tenantCacheSalt } from '../engines/buildkit/build-command.js';
import { ProcessError, runProcess } from '../engines/process-runner.js';
import { runSmoke, SMOKE_OUTPUT_CAP_BYTES, type SmokeRun } from '../engines/buildkit/smoke-run.js';
import { compareSmokeRuns, describeRun } from './smoke-compare.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';

export interface VerifyDeps {
  buildkit: BuildkitClient;
  inspector: ImageInspector;
  /** Registry the two builds are pushed to (the local registry). */
  scratchRegistry: string;
  /** How both default commands are run; `buildkit` when unset. */
  smokeRuntime?: 'buildkit' | 'docker' | 'none';
  smokeTimeoutSeconds?: number;
  /** DOCKER_CONFIG for buildctl and docker: the scratch registry may want credentials (serve's embedded one does). */
  dockerConfigDir?: string;
}

export interface OptimizeVerification {
  original_size_bytes: number;
  optimized_size_bytes: number;
  /** 1 − optimized/original. */
  reduction: number;
  smoke_test: 'passed' | 'failed' | 'skipped';
  details: Record<string, unknown>;
}

export interface Built {
  ref: string;
  size: number;
  platform: string;
  argv: string[];
  build_ms: number;
}

const DEFAULT_SMOKE_TIMEOUT_SECONDS = 10;

/** Builds one Dockerfile the way verify does (pushed to the scratch registry under the job's name), measured. */
export async function buildForVerify(
  job: { id: string; tenant: string },
  name: string,
  dockerfile: string,
  contextDir: string | undefined,
  deps: VerifyDeps,
  signal: AbortSignal,
  platform?: string,
): Promise<Built> {
  const dir = await mkdtemp(join(tmpdir(), 'stevedore-optimize-'));
  try {
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    const tag = `${deps.scratchRegistry}/stevedore-optimize/${job.id}:${name}`;
    const started = Date.now();
    const meta = await deps.buildkit.build(
      pushedDockerfileSpec(dir, [tag], tenantCacheSalt(job.tenant), {
        context: { dir: contextDir ?? dir },
        buildArgs: { SOURCE_DATE_EPOCH: '0' },
        platforms: platform ? [platform] : [],
      }),
      { signal, onProgressLine: () => undefined, timeoutMs: 1800_000, env: withDockerConfig(deps.dockerConfigDir) },
    );
    const build_ms = Date.now() - started;
    const ref = `${deps.scratchRegistry}/stevedore-optimize/${job.id}@${meta.digest}`;
    const info = await deps.inspector.inspect(ref);
    return {
      ref,
      size: info.size_bytes,
      platform: [info.os, info.architecture, info.variant].filter(Boolean).join('/'),
      argv: [...(info.config.entrypoint ?? []), ...(info.config.cmd ?? [])],
      build_ms,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs argv (by default the image's own command) in a built image with the configured runtime. */
export function runInImage(
  image: Built,
  argv: string[] | undefined,
  name: string,
  job: { id: string; tenant: string },
  deps: VerifyDeps,
  signal: AbortSignal,
): Promise<SmokeRun> {
  const timeoutSeconds = deps.smokeTimeoutSeconds ?? DEFAULT_SMOKE_TIMEOUT_SECONDS;
  if (deps.smokeRuntime === 'docker') {
    const container = `stevedore-smoke-${job.id}-${name}`.replace(/[^A-Za-z0-9_.-]/g, '-');
    return dockerSmoke(image.ref, container, argv, timeoutSeconds, signal, deps);
  }
  return runSmoke(deps.buildkit, {
    image: image.ref,
    argv: argv ?? image.argv,
    platform: image.platform || undefined,
    timeoutSeconds,
    cacheSalt: tenantCacheSalt(job.tenant),
    env: withDockerConfig(deps.dockerConfigDir),
    signal,
  });
}

/** Builds the original and the rewrite the same way (for `platform` when given), measures both, runs both. */
export async function verifyRewrite(
  job: { id: string; tenant: string },
  original: string,
  optimized: string,
  contextDir: string | undefined,
  deps: VerifyDeps,
  signal: AbortSignal,
  platform?: string,
): Promise<OptimizeVerification> {
  const a = await buildForVerify(job, 'original', original, contextDir, deps, signal, platform);
  const b = await buildForVerify(job, 'optimized', optimized, contextDir, deps, signal, platform);
  const verification: OptimizeVerification = {
    original_size_bytes: a.size,
    optimized_size_bytes: b.size,
    reduction: a.size ? Math.round((1 - b.size / a.size) * 1000) / 1000 : 0,
    smoke_test: 'skipped',
    details: { original: a.ref, optimized: b.ref },
  };
  await smokeTest(verification, a, b, job, deps, signal);
  return verification;
}

/** Runs both default commands one after the other (never at once: they share the worker) and compares them. */
async function smokeTest(
  verification: OptimizeVerification,
  a: Built,
  b: Built,
  job: { id: string; tenant: string },
  deps: VerifyDeps,
  signal: AbortSignal,
): Promise<void> {
  const runtime = deps.smokeRuntime ?? 'buildkit';
  const details = verification.details;
  if (runtime === 'none') {
    details.smoke_test = 'smoke tests are off (STEVEDORE_SMOKE_RUNTIME=none)';
    return;
  }
  if (!a.argv.length || !b.argv.length) {
    details.smoke_test = 'nothing to run: an image has no ENTRYPOINT or CMD';
    return;
  }
  const timeoutSeconds = deps.smokeTimeoutSeconds ?? DEFAULT_SMOKE_TIMEOUT_SECONDS;
  const run = (image: Built, name: string): Promise<SmokeRun> => runInImage(image, undefined, name, job, deps, signal);
  let ra: SmokeRun, rb: SmokeRun;
  try {
    ra = await run(a, 'original');
    rb = await run(b, 'optimized');
  } catch (err) {
    if (signal.aborted) throw err;
    // The run itself could not be set up (pull, runtime): no verdict on the program, and the sizes still stand.
    details.smoke_test = `could not run the smoke test: ${(err as Error).message.split('\n')[0]}`;
    return;
  }
  const verdict = compareSmokeRuns(ra, rb);
  verification.smoke_test = verdict.smoke_test;
  Object.assign(details, {
    smoke_runtime: runtime,
    smoke_reason: verdict.reason,
    smoke_timeout_seconds: timeoutSeconds,
    original_run: describeRun(ra),
    optimized_run: describeRun(rb),
  });
}

/** `docker run` of the image's default command, without network, killed at the time limit. */
async function dockerSmoke(
  ref: string,
  name: string,
  argv: string[] | undefined,
  timeoutSeconds: number,
  signal: AbortSignal,
  deps: VerifyDeps,
): Promise<SmokeRun> {
  const base = { stdout_truncated: false, stderr_truncated: false };
  await runProcess('docker', ['pull', '-q', ref], { signal, timeoutMs: 300_000, env: withDockerConfig(deps.dockerConfigDir) });
  try {
    const { stdout, stderr } = await runProcess(
      'docker',
      ['run', '--rm', '--name', name, '--network', 'none', ...(argv ? ['--entrypoint', argv[0]!, ref, ...argv.slice(1)] : [ref])],
      {
        signal,
        timeoutMs: timeoutSeconds * 1000,
      },
    );
    return {
      ...base,
      exit_code: 0,
      timed_out: false,
      stdout: stdout.slice(-SMOKE_OUTPUT_CAP_BYTES),
      stderr: stderr.slice(-SMOKE_OUTPUT_CAP_BYTES),
    };
  } catch (err) {
    if (!(err instanceof ProcessError) || signal.aborted) throw err;
    if (err.kind === 'timeout') return { ...base, exit_code: null, timed_out: true, stdout: '', stderr: err.stderrTail };
    // 125-127: docker itself could not create or start the container
    if (err.kind === 'exit' && err.exitCode !== null && (err.exitCode < 125 || err.exitCode > 127))
      return { ...base, exit_code: err.exitCode, timed_out: false, stdout: '', stderr: err.stderrTail };
    return { ...base, exit_code: err.exitCode, timed_out: false, stdout: '', stderr: err.stderrTail, error: err.message };
  } finally {
    await runProcess('docker', ['rm', '-f', name]).catch(() => undefined);
    await runProcess('docker', ['rmi', '-f', ref]).catch(() => undefined);
  }
}

/** This process's environment with DOCKER_CONFIG set, or undefined (= inherit it) without one. */
function withDockerConfig(dir: string | undefined): NodeJS.ProcessEnv | undefined {
  return dir ? { ...process.env, DOCKER_CONFIG: dir } : undefined;
}
