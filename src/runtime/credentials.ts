import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import bcrypt from 'bcryptjs';

/** The one user of the embedded registry's htpasswd file. */
export const REGISTRY_USER = 'stevedore';

/** URL-safe (unreserved) characters only: the value goes into a redis:// URL and redis.conf as is. */
const SAFE_SECRET = /^[A-Za-z0-9._~-]{16,256}$/;

/**
 * A password `serve` keeps in `<state dir>/<name>` (mode 0600): made once, reused on
 * every start, never printed or logged (only the file's path is). A file that is empty
 * or holds characters a URL would need escaped is replaced.
 */
export function ensureStateSecret(stateDir: string, name: string): { value: string; file: string } {
  const file = join(stateDir, name);
  if (existsSync(file)) {
    const value = readFileSync(file, 'utf8').trim();
    if (SAFE_SECRET.test(value)) {
      chmodSync(file, 0o600);
      return { value, file };
    }
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const value = randomBytes(24).toString('base64url');
  writeFileSync(file, value + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
  return { value, file };
}

/** Writes a file only its owner may read (0600), through a temporary file, so no reader sees half of it. */
export function writePrivateFile(file: string, content: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** redis.conf for the embedded Redis: the password lives here, not on redis-server's command line (`ps`). */
export function redisConfig(password: string): string {
  if (!SAFE_SECRET.test(password)) throw new Error('the Redis password must be 16-256 URL-safe characters');
  return `# Written by stevedore serve on every start from <state dir>/redis-password.\nrequirepass ${password}\n`;
}

/** One htpasswd line (bcrypt, the only hash Docker's registry accepts). */
export function htpasswdLine(user: string, password: string): string {
  return `${user}:${bcrypt.hashSync(password, 10)}\n`;
}

interface DockerConfigJson {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  [key: string]: unknown;
}

/**
 * A Docker config.json with `auths[registry]` set to these credentials, on top of the
 * operator's own file when there is one (its other entries kept as they are). Every tool
 * reads it: the Node registry client, buildctl (DOCKER_CONFIG, handing credentials to
 * buildkitd through its session), Trivy and cosign (DOCKER_CONFIG).
 */
export function dockerConfigWith(registry: string, credentials: { username: string; password: string }, base?: string): string {
  const parsed = base ? (JSON.parse(base) as DockerConfigJson) : {};
  const auth = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
  const config: DockerConfigJson = { ...parsed, auths: { ...(parsed.auths ?? {}), [registry]: { auth } } };
  return JSON.stringify(config, null, 2) + '\n';
}
