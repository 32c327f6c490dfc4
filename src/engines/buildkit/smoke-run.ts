import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertPlatform, formatImageReference, parseImageReference } from '../../oci/references.js';
import { ProcessError } from '../process-runner.js';
import type { BuildkitClient } from './buildkit-client.js';
import { SmokeLogCapture } from './smoke-log-capture.js';

/**
 * Runs an image's default command through BuildKit itself, so a smoke test needs no
 * container engine (default install, Kubernetes workers, arm64 variants under QEMU).
 *
 * The throwaway Dockerfile is `FROM <image@digest>` + one exec-form `RUN <entrypoint+cmd>`:
 * a stage FROM the image inherits its ENV, WORKDIR and USER, and BuildKit gives the step
 * /proc, /dev and /etc/hosts like a container, so the program runs as `docker run` would
 * run it, without any tool of the image's own (no shell, no `timeout`: scratch and
 * distroless work). Exec form has no variable expansion and no heredocs, and JSON keeps
 * every argument on the one line, so the image's command cannot change the Dockerfile.
 * Output is read back from the step's log in the progress stream, the exit code from the
 * step's error; the time limit is enforced from outside: when it runs out, buildctl is
 * killed and BuildKit cancels the step (that is the "still running" state of a server).
 * The step runs with `--network=none`, in the tenant's cache namespace, and with
 * `--no-cache`: a cached step would replay an old run instead of running the program.
 * ONBUILD triggers of the image run first, as in any build FROM it (they are tenant code
 * in the same sandbox; a failing one fails the build, which is reported, not judged).
 */
export interface SmokeRun {
  /** Null when the program was still running at the time limit or never started. */
  exit_code: number | null;
  stdout: string;
  stderr: string;
  timed_out: boolean;
  stdout_truncated: boolean;
  stderr_truncated: boolean;
  /** Why the program did not start (executable not found, bad user, …). */
  error?: string;
}

export interface SmokeRunOptions {
  /** Image pinned by digest (registry/repository@sha256:…). */
  image: string;
  /** ENTRYPOINT + CMD of the image. */
  argv: string[];
  /** The image's platform; a foreign one runs under QEMU. */
  platform?: string;
  timeoutSeconds: number;
  cacheSalt: string;
  /** Bytes kept of stdout and of stderr each. */
  outputCapBytes?: number;
  /** buildctl's environment (DOCKER_CONFIG for the registry). */
  env?: NodeJS.ProcessEnv;
  signal: AbortSignal;
}

export const SMOKE_OUTPUT_CAP_BYTES = 64 * 1024;
/** Marks our step among the build's vertexes (an ONBUILD RUN of the image is another one). */
const STEP_FLAGS = '--network=none';

/** The throwaway Dockerfile: nothing but the pinned image and its command. */
export function smokeDockerfile(image: string, argv: string[]): string {
  const ref = parseImageReference(image);
  if (!ref.digest) throw new Error(`smoke test image ${image} is not pinned by digest`);
  const pinned = formatImageReference(ref);
  if (/\s/.test(pinned)) throw new Error(`smoke test image ${image} cannot be written into a Dockerfile`);
  if (!argv.length) throw new Error('the image has no ENTRYPOINT or CMD');
  if (argv.some((a) => a.includes('\0'))) throw new Error('the image command contains a NUL byte');
  return `FROM ${pinned}\nRUN ${STEP_FLAGS} ${JSON.stringify(argv)}\n`;
}

export async function runSmoke(buildkit: BuildkitClient, options: SmokeRunOptions): Promise<SmokeRun> {
  if (options.platform) assertPlatform(options.platform);
  const dockerfile = smokeDockerfile(options.image, options.argv);
  const dir = await mkdtemp(join(tmpdir(), 'stevedore-smoke-'));
  const capture = new SmokeLogCapture(`RUN ${STEP_FLAGS} `, options.outputCapBytes ?? SMOKE_OUTPUT_CAP_BYTES);
  const deadline = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  /** The step as it was when the limit ran out: once buildctl is told to stop, BuildKit reports the step cancelled. */
  let atLimit: { finished: boolean; error?: string } | undefined;
  // The limit counts from the moment the step starts: pulling and unpacking the image do not count.
  capture.onStepStarted = () => {
    timer ??= setTimeout(() => {
      atLimit = { finished: capture.finished(), error: capture.stepError() };
      deadline.abort();
    }, options.timeoutSeconds * 1000);
  };
  try {
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    try {
      await buildkit.build(
        {
          context: { dir },
          dockerfileDir: dir,
          dockerfileName: 'Dockerfile',
          buildArgs: {},
          platforms: options.platform ? [options.platform] : [],
          tags: [],
          push: false,
          labels: {},
          noCache: true,
          secrets: [],
          provenance: false,
          annotations: {},
          insecureRegistries: [],
          metadataFile: join(dir, 'metadata.json'),
          cacheSalt: options.cacheSalt,
        },
        {
          signal: AbortSignal.any([options.signal, deadline.signal]),
          // Covers pulls and a cancellation that does not end buildctl; the program's own limit is the timer.
          timeoutMs: 600_000 + options.timeoutSeconds * 1000,
          env: options.env,
          onProgressLine: (line) => capture.feed(line),
        },
      );
      return { ...capture.output(), exit_code: 0, timed_out: false };
    } catch (err) {
      if (options.signal.aborted || !(err instanceof ProcessError)) throw err;
      if (atLimit && !atLimit.finished) return { ...capture.output(), exit_code: null, timed_out: true };
      const step = atLimit ? atLimit.error : capture.stepError();
      // Ended just before the limit, the build then cut short: an exit all the same.
      if (atLimit && step === undefined) return { ...capture.output(), exit_code: 0, timed_out: false };
      if (step === undefined) throw err; // the build failed before the program ran (pull, platform): not a verdict on the program
      const code = exitCodeOf(step);
      const output = capture.output();
      // runc reports a program it could not start (missing executable, bad user) on the step's stderr, as exit code 1.
      const notStarted = NOT_STARTED.exec(output.stderr);
      if (code === null || notStarted) return { ...output, exit_code: null, timed_out: false, error: notStarted ? notStarted[0] : step };
      return { ...output, exit_code: code, timed_out: false };
    }
  } finally {
    clearTimeout(timer);
    await rm(dir, { recursive: true, force: true });
  }
}

const NOT_STARTED = /^runc run failed: unable to start container process: [^\n]*/;

/** BuildKit ends a failed exec step's error with `did not complete successfully: exit code: N`. */
export function exitCodeOf(stepError: string): number | null {
  const m = /did not complete successfully: exit code: (\d+)\s*$/.exec(stepError);
  return m ? Number(m[1]) : null;
}
