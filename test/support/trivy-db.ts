import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runProcess } from '../../src/engines/process-runner.js';
import { PROJECT_DIR } from './env.js';
import { tempDir } from './temp-dir.js';

/**
 * Which test DB (test/trivy-db `-variant`). 1: the DB every test scans with (UpdatedAt
 * 2026-11-01). 2: the same DB a day later (UpdatedAt 2026-11-02) — it adds CVE-2022-3715
 * for bash (HIGH, fixable; in the base image) and fixes tar's CVE-2019-9923 in the
 * version the base image has, so a rescan of a debian-based image introduces the one
 * and resolves the other; apt, zlib and lodash findings are unchanged.
 */
export type TestDbVariant = 1 | 2;

/** What a rescan from variant 1 to variant 2 changes in any image FROM the test base. */
export const VARIANT_2_CHANGES = {
  introduced: [{ id: 'CVE-2022-3715', package: 'bash', severity: 'HIGH', fixed_version: '5.2.15-2+deb12u1' }],
  resolved: [{ id: 'CVE-2019-9923', package: 'tar', severity: 'HIGH', fixed_version: '1.34+dfsg-1.2+deb12u2' }],
  updatedAt: { 1: '2026-11-01T00:00:00Z', 2: '2026-11-02T00:00:00Z' },
} as const;

/**
 * The generator's path: STEVEDORE_TRIVY_TEST_DB (scripts/test.sh sets it), else what
 * scripts/trivy-test-db.sh builds, cached by the generator's source hash — so a binary
 * built from older sources (without -variant) is never picked up.
 */
async function generator(): Promise<string> {
  const given = process.env.STEVEDORE_TRIVY_TEST_DB;
  if (given && existsSync(given)) return given;
  const { stdout } = await runProcess('bash', [join(PROJECT_DIR, 'scripts', 'trivy-test-db.sh')], {
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
    timeoutMs: 300_000,
  });
  return stdout.trim().split('\n').pop()!;
}

/**
 * A Trivy cache dir holding the test vulnerability DB (test/trivy-db writes real
 * advisories for packages of the test images), variant 1 unless told.
 */
export async function makeTrivyCache(options: { variant?: TestDbVariant } = {}): Promise<string> {
  const bin = await generator();
  const dir = tempDir('stv-trivy-');
  await runProcess(bin, ['-out', dir, '-variant', String(options.variant ?? 1)]);
  return dir;
}
