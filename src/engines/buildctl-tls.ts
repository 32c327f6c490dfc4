import type { ProcessRunner } from './process-runner.js';

/**
 * A runner for buildctl that puts `--tlsdir DIR` before every command's arguments: mutual
 * TLS to a `tcp://` buildkitd (STEVEDORE_BUILDKIT_TLS_DIR, a directory holding `ca.pem`,
 * `cert.pem` and `key.pem`). Global flags, so they work for `build` and `debug workers`
 * alike. Without a directory the runner is returned as it is.
 */
export function buildctlWithTls(runner: ProcessRunner, tlsDir: string | undefined): ProcessRunner {
  if (!tlsDir) return runner;
  return { run: (command, args, options) => runner.run(command, ['--tlsdir', tlsDir, ...args], options) };
}
