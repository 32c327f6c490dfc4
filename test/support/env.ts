import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig, type AppConfig } from '../../src/config/config.js';
import { tempDir } from './temp-dir.js';

export const PROJECT_DIR = fileURLToPath(new URL('../../../', import.meta.url));
export const CACHE_DIR = process.env.STEVEDORE_CACHE_DIR ?? '/var/cache/stevedore';
/** The seeded base's platforms: the default set unless STEVEDORE_BASE_PLATFORMS names another (made by setup first). */
export const BASE_PLATFORMS: readonly string[] = (process.env.STEVEDORE_BASE_PLATFORMS ?? 'linux/amd64,linux/arm64')
  .split(',')
  .map((p) => p.trim())
  .filter(Boolean);

/** Tool paths exactly as the service resolves them. */
export const TOOLS: AppConfig['tools'] = loadConfig({ ...process.env, STEVEDORE_CACHE_DIR: CACHE_DIR }).tools;

/** Image names scripts/test-images.sh built for testcontainers. */
export function testImages(): { redis: string; registry: string } {
  return JSON.parse(readFileSync(join(CACHE_DIR, 'test-images.json'), 'utf8')) as { redis: string; registry: string };
}

/**
 * The password every test Redis requires (`--requirepass`), random per test process: the
 * service refuses a REDIS_URL without one, so tests run it the way it is deployed.
 */
export const TEST_REDIS_PASSWORD = randomBytes(18).toString('base64url');

/** The URL of a test Redis on this loopback port, with its password. */
export function testRedisUrl(port: number, db = 0): string {
  return `redis://:${TEST_REDIS_PASSWORD}@127.0.0.1:${port}/${db}`;
}

/** A fixed secrets-at-rest key for test apps (32 bytes, base64). */
export const TEST_SECRETS_KEY = Buffer.alloc(32, 7).toString('base64');

/**
 * Network rule: STEVEDORE_TRIVY_DB_UPDATE=auto (the default) must never reach Trivy's
 * public registries from a test; this loopback port (tcpmux, unused) refuses at once.
 * Every app a test starts, in process or spawned, gets it unless the test names its own.
 */
export const OFFLINE_TRIVY_DB = { STEVEDORE_TRIVY_DB_REPOSITORY: '127.0.0.1:1/aquasec/trivy-db:2' } as const;

/**
 * A config for an in-process app; tests override what they start themselves. Its state
 * dir (artifacts, uploaded contexts, the Trivy cache unless `trivy` is given) is a temp dir
 * of its own unless `stateDir` names one: never the machine's /var/lib/stevedore.
 */
export function testConfig(overrides: Partial<AppConfig> = {}): AppConfig {
  const base = loadConfig({
    PATH: process.env.PATH,
    STEVEDORE_CACHE_DIR: CACHE_DIR,
    STEVEDORE_STATE_DIR: overrides.stateDir ?? tempDir('stv-state-'),
    STEVEDORE_LOG_LEVEL: 'warn',
    STEVEDORE_TOKEN: 'test-admin-token-0123456789',
    STEVEDORE_SECRETS_KEY: TEST_SECRETS_KEY,
    // Builds may ask for every platform the seeded base holds.
    STEVEDORE_BASE_PLATFORMS: BASE_PLATFORMS.join(','),
    STEVEDORE_BUILD_PLATFORMS: [...new Set(['linux/amd64', 'linux/arm64', ...BASE_PLATFORMS])].join(','),
    ...OFFLINE_TRIVY_DB,
  });
  return { ...base, ...overrides };
}
