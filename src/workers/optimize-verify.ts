import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { tenantCacheSalt } from '../engines/buildkit/build-command.js';
import { ProcessError, runProcess } from '../engines/process-runner.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';

export interface VerifyDeps {
  buildkit: BuildkitClient;
  inspector: ImageInspector;
  /** Registry the two builds are pushed to (the local registry). */
  scratchRegistry: string;
  smokeRuntime?: 'docker';
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

/** Builds the original and the rewrite the same way, measures both, runs both. */
export async function verifyRewrite(
  job: { id: string; tenant: string },
  original: string,
  optimized: string,
  contextDir: string | undefined,
  deps: VerifyDeps,
  signal: AbortSignal,
): Promise<OptimizeVerification> {
  const scratch = await mkdtemp(join(tmpdir(), 'stevedore-optimize-'));
  try {
    const build = async (name: 'original' | 'optimized', dockerfile: string) => {
      const dir = join(scratch, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'Dockerfile'), dockerfile);
      const tag = `${deps.scratchRegistry}/stevedore-optimize/${job.id}:${name}`;
      const meta = await deps.buildkit.build(
        {
          context: { dir: contextDir ?? dir },
          dockerfileDir: dir,
          dockerfileName: 'Dockerfile',
          buildArgs: { SOURCE_DATE_EPOCH: '0' },
          platforms: [],
          tags: [tag],
          push: true,
          labels: {},
          noCache: false,
          secrets: [],
          provenance: false,
          annotations: {},
          insecureRegistries: [],
          metadataFile: join(dir, 'metadata.json'),
          cacheSalt: tenantCacheSalt(job.tenant),
        },
        { signal, onProgressLine: () => undefined, timeoutMs: 1800_000, env: withDockerConfig(deps.dockerConfigDir) },
      );
      const info = await deps.inspector.inspect(`${deps.scratchRegistry}/stevedore-optimize/${job.id}@${meta.digest}`);
      return { ref: `${deps.scratchRegistry}/stevedore-optimize/${job.id}@${meta.digest}`, size: info.size_bytes };
    };
    const a = await build('original', original);
    const b = await build('optimized', optimized);
    const verification: OptimizeVerification = {
      original_size_bytes: a.size,
      optimized_size_bytes: b.size,
      reduction: a.size ? Math.round((1 - b.size / a.size) * 1000) / 1000 : 0,
      smoke_test: 'skipped',
      details: { original: a.ref, optimized: b.ref },
    };
    if (deps.smokeRuntime === 'docker') {
      const [ra, rb] = [await smoke(a.ref, signal, deps.dockerConfigDir), await smoke(b.ref, signal, deps.dockerConfigDir)];
      verification.smoke_test = ra.exit === rb.exit && ra.output === rb.output ? 'passed' : 'failed';
      verification.details = { ...verification.details, original_run: ra, optimized_run: rb };
    } else {
      verification.details.smoke_test = 'no container runtime configured (STEVEDORE_SMOKE_RUNTIME)';
    }
    return verification;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs the image's default command, without network, for at most 60 s. */
async function smoke(ref: string, signal: AbortSignal, dockerConfigDir?: string): Promise<{ exit: number | null; output: string }> {
  await runProcess('docker', ['pull', '-q', ref], { signal, timeoutMs: 300_000, env: withDockerConfig(dockerConfigDir) });
  try {
    const { stdout } = await runProcess('docker', ['run', '--rm', '--network', 'none', ref], { signal, timeoutMs: 60_000 });
    return { exit: 0, output: stdout.slice(-4096) };
  } catch (err) {
    if (err instanceof ProcessError && err.kind === 'exit') return { exit: err.exitCode, output: err.stderrTail.slice(-4096) };
    throw err;
  } finally {
    await runProcess('docker', ['rmi', '-f', ref]).catch(() => undefined);
  }
}

/** This process's environment with DOCKER_CONFIG set, or undefined (= inherit it) without one. */
function withDockerConfig(dir: string | undefined): NodeJS.ProcessEnv | undefined {
  return dir ? { ...process.env, DOCKER_CONFIG: dir } : undefined;
}
