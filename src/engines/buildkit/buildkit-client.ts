import { readFile } from 'node:fs/promises';
import type { ProcessRunner } from '../process-runner.js';
import { buildctlArgs, type BuildSpec } from './build-command.js';

export interface BuildkitWorker {
  id: string;
  platforms: string[];
}

export interface BuildMetadata {
  /** Digest of the image (an index for multi-platform or attested builds). */
  digest?: string;
  configDigest?: string;
  imageNames: string[];
}

/** Adapter over buildctl: daemon workers and builds. */
export class BuildkitClient {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly buildctl: string,
    private readonly address: string,
  ) {}

  /** Lists the daemon's workers; fails when buildkitd is not reachable. */
  async workers(timeoutMs = 5_000): Promise<BuildkitWorker[]> {
    const { stdout } = await this.runner.run(this.buildctl, ['--addr', this.address, 'debug', 'workers', '--format', '{{json .}}'], {
      timeoutMs,
    });
    return parseWorkers(stdout);
  }

  /**
   * Runs one build. Progress arrives on stderr as rawjson lines (`onProgressLine`);
   * the abort signal kills buildctl, which makes buildkitd cancel the solve.
   */
  async build(
    spec: BuildSpec,
    options: { signal?: AbortSignal; timeoutMs?: number; env?: NodeJS.ProcessEnv; onProgressLine: (line: string) => void },
  ): Promise<BuildMetadata> {
    await this.runner.run(this.buildctl, buildctlArgs(this.address, spec), {
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      env: options.env,
      onStderrLine: options.onProgressLine,
    });
    const meta = JSON.parse(await readFile(spec.metadataFile, 'utf8').catch(() => '{}')) as Record<string, unknown>;
    return {
      digest: meta['containerimage.digest'] as string | undefined,
      configDigest: meta['containerimage.config.digest'] as string | undefined,
      imageNames: (typeof meta['image.name'] === 'string' ? meta['image.name'] : '').split(',').filter(Boolean),
    };
  }
}

/** `buildctl debug workers --format '{{json .}}'` prints one JSON array of workers. */
export function parseWorkers(stdout: string): BuildkitWorker[] {
  const parsed = JSON.parse(stdout.trim() || '[]') as {
    ID?: string;
    Platforms?: { OS: string; Architecture: string; Variant?: string }[];
  }[];
  return parsed.map((w) => ({
    id: w.ID ?? '',
    platforms: (w.Platforms ?? []).map((p) => [p.OS, p.Architecture, p.Variant].filter(Boolean).join('/')),
  }));
}
