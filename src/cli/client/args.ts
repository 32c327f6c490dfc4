import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { readText } from './context-upload.js';
import { UsageError } from './http.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** Options every client command takes. */
export const COMMON_OPTIONS: Options = {
  json: { type: 'boolean' },
  'no-wait': { type: 'boolean' },
  url: { type: 'string' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

export const COMMON_HELP = `common options:
  --json            print the final job record as JSON on stdout (no progress)
  --no-wait         print the job id once submitted and exit 0
  --timeout SECS    the job's time limit (timeout_seconds)
  --url URL         the server (default: STEVEDORE_URL, else http://127.0.0.1:8080)
  -h, --help        this help`;

/** util.parseArgs, strict, with its errors as usage errors (exit 2). */
export function parse(argv: string[], options: Options): { values: Values; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { ...COMMON_OPTIONS, ...options },
      allowPositionals: true,
      strict: true,
    });
    return { values: values, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
}

export const str = (v: Values, name: string): string | undefined => (typeof v[name] === 'string' ? v[name] : undefined);
export const flag = (v: Values, name: string): boolean => v[name] === true;

/** A repeatable option, each value also split on commas: `--platform a,b --platform c`. */
export function list(v: Values, name: string): string[] | undefined {
  const raw = v[name];
  if (raw === undefined) return undefined;
  const items = (Array.isArray(raw) ? raw : [raw])
    .flatMap((x) => String(x).split(','))
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** Repeatable `KEY=VALUE` (values may hold `=` and commas, so no splitting on them). */
export function pairs(v: Values, name: string): Record<string, string> | undefined {
  const raw = v[name];
  if (raw === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const item of (Array.isArray(raw) ? raw : [raw]).map(String)) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--${name} ${item}: expected KEY=VALUE`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

export function int(v: Values, name: string, min = 0): number | undefined {
  const raw = str(v, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min) throw new UsageError(`--${name} ${raw}: expected a whole number${min ? ` >= ${min}` : ''}`);
  return Number(raw);
}

export function positional(positionals: string[], index: number, what: string, usage: string): string {
  const value = positionals[index];
  if (!value) throw new UsageError(`missing ${what} (${usage.split('\n')[0]})`);
  return value;
}

export function noExtra(positionals: string[], max: number): void {
  if (positionals.length > max) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[max])}`);
}

export const POLICY_OPTIONS: Options = {
  'max-critical': { type: 'string' },
  'max-high': { type: 'string' },
  'max-medium': { type: 'string' },
  'max-low': { type: 'string' },
  'max-unknown': { type: 'string' },
  'ignore-unfixed': { type: 'boolean' },
  policy: { type: 'string' },
  severity: { type: 'string', multiple: true },
  scanners: { type: 'string', multiple: true },
};

export const POLICY_HELP = `  --max-critical N, --max-high N, --max-medium N, --max-low N, --max-unknown N
                    the gate: findings allowed per severity (server default:
                    no critical, at most 4 high)
  --policy FILE     a policy as JSON or YAML ({max_high, allow: [{id, reason, expires}], …});
                    the --max-* flags override its limits
  --ignore-unfixed  leave out findings that have no fixed version
  --severity LIST   report only these severities (CRITICAL,HIGH,…)
  --scanners LIST   vuln,secret (default both)`;

/** The scan options and policy from the flags; undefined when none was given. */
export async function scanOptions(v: Values): Promise<Record<string, unknown> | undefined> {
  let policy: Record<string, unknown> = {};
  const file = str(v, 'policy');
  if (file) {
    try {
      policy = parseYaml(await readText(file)) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UsageError(`--policy ${file}: ${(err as Error).message}`);
    }
    if (!policy || typeof policy !== 'object' || Array.isArray(policy))
      throw new UsageError(`--policy ${file}: expected a mapping like {max_high: 0}`);
  }
  for (const severity of ['critical', 'high', 'medium', 'low', 'unknown']) {
    const max = int(v, `max-${severity}`);
    if (max !== undefined) policy[`max_${severity}`] = max;
  }
  const out: Record<string, unknown> = {};
  if (Object.keys(policy).length) out.policy = policy;
  const severity = list(v, 'severity')?.map((s) => s.toUpperCase());
  if (severity) out.severity = severity;
  const scanners = list(v, 'scanners');
  if (scanners) out.scanners = scanners;
  if (flag(v, 'ignore-unfixed')) out.ignore_unfixed = true;
  return Object.keys(out).length ? out : undefined;
}
