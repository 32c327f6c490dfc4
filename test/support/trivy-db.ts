import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runProcess } from '../../src/engines/process-runner.js';
import { CACHE_DIR, PROJECT_DIR } from './env.js';

/**
 * A Trivy cache dir holding the test vulnerability DB (test/trivy-db writes real
 * advisories for packages of the test images). The generator is built by
 * scripts/test.sh; built here too when missing.
 */
export async function makeTrivyCache(): Promise<string> {
  const bin = process.env.STEVEDORE_TRIVY_TEST_DB ?? join(CACHE_DIR, 'bin', 'trivy-test-db');
  if (!existsSync(bin)) {
    await runProcess('go', ['build', '-o', bin, '.'], {
      cwd: join(PROJECT_DIR, 'test', 'trivy-db'),
      env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
      timeoutMs: 300_000,
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'stv-trivy-'));
  await runProcess(bin, ['-out', dir]);
  return dir;
}
