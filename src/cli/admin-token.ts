import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The admin token `serve` uses when STEVEDORE_TOKEN is unset: made once, kept in the
 * state dir (mode 0600) so it survives restarts, never printed — only its path is.
 */
export function ensureAdminToken(stateDir: string): { token: string; file: string } {
  const file = join(stateDir, 'admin-token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token.length >= 16) return { token, file };
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const token = `stv_${randomBytes(24).toString('base64url')}`;
  writeFileSync(file, token + '\n', { mode: 0o600 });
  return { token, file };
}

/** The secrets-at-rest key `serve` uses when STEVEDORE_SECRETS_KEY is unset: made once, 0600. */
export function ensureSecretsKey(stateDir: string): Buffer {
  const file = join(stateDir, 'secrets.key');
  if (existsSync(file)) {
    const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
    if (key.length === 32) return key;
  }
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600 });
  return key;
}
