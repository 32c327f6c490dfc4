import type { AppConfig } from '../../config/config.js';
import type { ProcessRunner } from '../process-runner.js';

export interface ToolVersions {
  buildctl?: string;
  trivy?: string;
  cosign?: string;
}

/** Asks each installed tool for its version; a tool that cannot answer is left out. */
export async function readToolVersions(runner: ProcessRunner, tools: AppConfig['tools']): Promise<ToolVersions> {
  const ask = async (cmd: string, args: string[], pattern: RegExp) => {
    try {
      const { stdout, stderr } = await runner.run(cmd, args, { timeoutMs: 10_000 });
      return pattern.exec(stdout + stderr)?.[1];
    } catch {
      return undefined;
    }
  };
  const [buildctl, trivy, cosign] = await Promise.all([
    ask(tools.buildctl, ['--version'], /buildctl \S+ (v\S+)/),
    ask(tools.trivy, ['--version'], /^Version: (\S+)/m),
    ask(tools.cosign, ['version'], /GitVersion:\s+(\S+)/),
  ]);
  return { buildctl, trivy, cosign };
}
