import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { OFFLINE_TRIVY_DB, PROJECT_DIR } from './env.js';
import { tempDir } from './temp-dir.js';

/** `stevedore api` or `stevedore worker` as its own process, everything it prints kept. */
export interface AppProcess {
  readonly role: 'api' | 'worker';
  /** stdout and stderr so far, as bytes (pino's JSON lines and anything else). */
  output(): Buffer;
  /** Resolves when a line of output matches (or rejects when the process exits first). */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** `env` is the child's whole environment; a state dir of the test's own unless it names one. */
export function startAppProcess(role: 'api' | 'worker', env: NodeJS.ProcessEnv): AppProcess {
  const child: ChildProcess = spawn(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), role], {
    env: { ...OFFLINE_TRIVY_DB, STEVEDORE_STATE_DIR: env.STEVEDORE_STATE_DIR ?? tempDir('stv-app-state-'), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const chunks: Buffer[] = [];
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    chunks.push(chunk);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const output = () => Buffer.concat(chunks);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    role,
    output,
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pattern.test(output().toString('utf8'))) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(
              `stevedore ${role}: no output matching ${pattern} within ${timeoutMs} ms:\n${output().toString('utf8').slice(-4000)}`,
            ),
          );
        }, timeoutMs);
        const onExit = () => {
          done();
          reject(new Error(`stevedore ${role} exited (${child.exitCode}):\n${output().toString('utf8').slice(-4000)}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
        if (child.exitCode !== null || child.signalCode !== null) onExit();
      });
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
