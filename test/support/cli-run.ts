import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_DIR } from './env.js';

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * The real `stevedore` command as a child process: argument arrays, no shell, no state
 * directory (it is a client here). `onStderr` sees stderr as it grows (progress lines).
 */
export function runCli(args: string[], env: Record<string, string> = {}, onStderr?: (text: string) => void): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), ...args], {
      env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/root', NO_COLOR: '1', STEVEDORE_STATE_DIR: '/nonexistent', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A run as an assertion message shows it. */
export const showRun = (r: CliRun) => `exit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
