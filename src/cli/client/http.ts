import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT, exitCodeForStatus, type ExitCode } from './exit-codes.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';
const DEFAULT_STATE_DIR = '/var/lib/stevedore';

export interface ClientConfig {
  url: string;
  token?: string;
}

/**
 * STEVEDORE_URL and STEVEDORE_TOKEN; without a token, the admin token a local `serve`
 * wrote (readable only to its user), so `stevedore build` works next to `stevedore serve`.
 */
export function clientConfig(env: NodeJS.ProcessEnv, urlFlag?: string): ClientConfig {
  const url = (urlFlag ?? env.STEVEDORE_URL ?? DEFAULT_URL).replace(/\/+$/, '');
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol))
    throw new UsageError(`STEVEDORE_URL ${JSON.stringify(url)}: expected http(s)://host:port`);
  let token = env.STEVEDORE_TOKEN || undefined;
  if (!token) {
    try {
      token = readFileSync(join(env.STEVEDORE_STATE_DIR || DEFAULT_STATE_DIR, 'admin-token'), 'utf8').trim() || undefined;
    } catch {
      // No readable token file: requests go out without one and the server says 401.
    }
  }
  return { url, token };
}

/** Anything that ends the command with a message and an exit code. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Extra lines under the message (the fields a 400 names). */
    readonly lines: string[] = [],
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.USAGE);
  }
}

interface ErrorShape {
  error?: { code?: string; message?: string; details?: { fields?: { path: string; message: string }[] } & Record<string, unknown> };
  request_id?: string;
}

/** The service's error shape, `{error: {code, message, details}}`, as `error CODE: message` plus its fields. */
export function apiError(status: number, body: unknown): CliError {
  const e = (body as ErrorShape | undefined)?.error;
  const code = e?.code ?? `HTTP_${status}`;
  const message = e?.message ?? (typeof body === 'string' && body ? body.slice(0, 500) : `HTTP ${status}`);
  const lines = (e?.details?.fields ?? []).map((f) => `  ${f.path}: ${f.message}`);
  return new CliError(`error ${code}: ${message}`, exitCodeForStatus(status), lines);
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  json?: unknown;
  body?: Uint8Array;
  contentType?: string;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

export class ApiClient {
  constructor(readonly config: ClientConfig) {}

  url(path: string, query: RequestOptions['query'] = {}): string {
    const u = new URL(this.config.url + path);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) u.searchParams.set(k, String(v));
    return u.toString();
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.config.token ? { authorization: `Bearer ${this.config.token}` } : {}), 'user-agent': 'stevedore-cli', ...extra };
  }

  /** A raw response; connection failures become exit 5 with the URL named. */
  async fetch(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers = this.headers(options.headers);
    let body: RequestInit['body'];
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers['content-type'] = 'application/json';
    } else if (options.body) {
      body = options.body;
      headers['content-type'] = options.contentType ?? 'application/octet-stream';
    }
    try {
      return await fetch(this.url(path, options.query), { method, headers, body, signal: options.signal });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw unreachable(this.config.url, err);
    }
  }

  /** A JSON request: 2xx answers its body, anything else throws the service's error. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.fetch(method, path, options);
    const text = await res.text().catch((err: unknown) => {
      throw unreachable(this.config.url, err);
    });
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON (a proxy's error page): shown as text
    }
    if (!res.ok) throw this.error(res.status, body);
    return body as T;
  }

  /** The service's error, with a hint when a 401 comes from having no token at all. */
  error(status: number, body: unknown): CliError {
    const err = apiError(status, body);
    if (status === 401 && !this.config.token) err.lines.push('no token: set STEVEDORE_TOKEN to the admin token or an stvk_ API key');
    return err;
  }
}

export function unreachable(url: string, err: unknown): CliError {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const why = cause?.code ?? cause?.message ?? (err as Error)?.message ?? String(err);
  return new CliError(`cannot reach stevedore at ${url}: ${why} (set STEVEDORE_URL)`, EXIT.UNREACHABLE);
}
