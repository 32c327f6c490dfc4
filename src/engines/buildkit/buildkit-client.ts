import type { ProcessRunner } from '../process-runner.js';

export interface BuildkitWorker {
  id: string;
  platforms: string[];
}

/** Adapter over buildctl; later issues add build(). */
export class BuildkitClient {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly buildctl: string,
    private readonly address: string,
  ) {}

  /** Lists the daemon's workers; fails when buildkitd is not reachable. */
  async workers(timeoutMs = 5_000): Promise<BuildkitWorker[]> {
    const { stdout } = await this.runner.run(this.buildctl, ['--addr', this.address, 'debug', 'workers', '--format', '{{json .}}'], { timeoutMs });
    return parseWorkers(stdout);
  }
}

/** `buildctl debug workers --format '{{json .}}'` prints one JSON array of workers. */
export function parseWorkers(stdout: string): BuildkitWorker[] {
  const parsed = JSON.parse(stdout.trim() || '[]') as { ID?: string; Platforms?: { OS: string; Architecture: string; Variant?: string }[] }[];
  return parsed.map((w) => ({
    id: w.ID ?? '',
    platforms: (w.Platforms ?? []).map((p) => [p.OS, p.Architecture, p.Variant].filter(Boolean).join('/')),
  }));
}
