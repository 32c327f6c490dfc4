/** Secret-looking values an image's config carries in the open (Env, Labels, history). Pure. */
export interface ImageConfig {
  config?: { Env?: string[] | null; Labels?: Record<string, string> | null };
  history?: { created_by?: string; empty_layer?: boolean }[];
}

export interface SecretFinding {
  source: 'env' | 'history' | 'label';
  name: string;
  value: '[redacted]';
}

const SECRET_WORDS = new Set([
  'password',
  'passwd',
  'pwd',
  'pass',
  'passphrase',
  'secret',
  'secrets',
  'token',
  'credential',
  'credentials',
  'auth',
  'apikey',
  'privatekey',
  'accesskey',
  'secretkey',
]);
/** Names that point at a secret rather than hold one (POSTGRES_PASSWORD_FILE=/run/secrets/db, SSH_AUTH_SOCK). */
const REFERENCE_WORDS = new Set(['file', 'path', 'dir', 'sock']);
const SECRET_VALUES: [RegExp, string][] = [
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, 'private_key'],
  [/\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/, 'aws_access_key_id'],
];

/** Word match, not substring: GPG_KEY (a public fingerprint) and image.authors stay out. */
export function looksSecret(name: string): boolean {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  if (REFERENCE_WORDS.has(words.at(-1) ?? '')) return false;
  return words.some((word, i) => SECRET_WORDS.has(word) || SECRET_WORDS.has(word + (words[i + 1] ?? '')));
}

/** Secret-looking names with a value (not a $reference) in Env, Labels and history; values are never kept. */
export function secretsIn(config: ImageConfig): SecretFinding[] {
  const found = new Map<string, SecretFinding>();
  const check = (source: 'env' | 'history' | 'label', name: string, value: string) => {
    const bare = value.replace(/^(["'])(.*)\1$/, '$2');
    if (!bare || bare.startsWith('$')) return;
    const hit = looksSecret(name) ? name : SECRET_VALUES.find(([pattern]) => pattern.test(bare)) && name;
    if (hit && !found.has(`${source}:${hit}`)) found.set(`${source}:${hit}`, { source, name: hit, value: '[redacted]' });
  };
  for (const entry of config.config?.Env ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) check('env', entry.slice(0, eq), entry.slice(eq + 1));
  }
  for (const [name, value] of Object.entries(config.config?.Labels ?? {})) check('label', name, value);
  for (const { created_by: command } of config.history ?? []) {
    if (!command) continue;
    // NAME=value (ENV, build args as `|1 NAME=value`, inline env) and --flag=value / --flag value.
    for (const m of command.matchAll(/(?:^|[\s;&|('"`])-{0,2}([A-Za-z_][\w.-]*)=("[^"]*"|'[^']*'|[^\s;&|'"`)]+)/g))
      check('history', m[1]!, m[2]!);
    for (const m of command.matchAll(/(?:^|\s)--([a-z][\w-]*)\s+("[^"]*"|'[^']*'|[^\s-]\S*)/gi)) check('history', m[1]!, m[2]!);
    for (const [pattern, name] of SECRET_VALUES) if (pattern.test(command)) check('history', name, 'x');
  }
  return [...found.values()];
}
