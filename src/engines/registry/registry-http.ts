import type { RegistryCredentials } from './docker-config.js';
import { RegistryError } from './registry-errors.js';

export interface RegistryHttpOptions {
  scheme: 'http' | 'https';
  credentials?: RegistryCredentials;
  timeoutMs?: number;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `WWW-Authenticate: Bearer realm="...",service="...",scope="..."`. */
export function parseChallenge(header: string): Challenge | undefined {
  const match = /^(\w+)\s*(.*)$/.exec(header.trim());
  if (!match) return undefined;
  const params: Record<string, string> = {};
  for (const m of match[2]!.matchAll(/(\w+)="([^"]*)"/g)) params[m[1]!.toLowerCase()] = m[2]!;
  return { scheme: match[1]!.toLowerCase(), params };
}

/**
 * HTTP to one registry with its auth dance: on 401 it follows the challenge (Basic
 * with the configured credentials, or a Bearer token from the realm, anonymous when
 * there are none), caches the token per scope and retries once.
 */
export class RegistryHttp {
  readonly base: string;
  private readonly tokens = new Map<string, string>();
  private basic = false;

  constructor(
    readonly host: string,
    private readonly options: RegistryHttpOptions,
  ) {
    this.base = `${options.scheme}://${host}`;
  }

  async request(method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer; scope?: string; timeoutMs?: number } = {}): Promise<Response> {
    const first = await this.send(method, path, init);
    if (first.status !== 401) return first;
    const challenge = parseChallenge(first.headers.get('www-authenticate') ?? '');
    await first.body?.cancel();
    if (!challenge) throw new RegistryError('unauthorized', `${this.host} refused the request (401) without a usable challenge`, 401);
    if (challenge.scheme === 'basic') {
      if (!this.options.credentials) throw new RegistryError('unauthorized', `${this.host} needs credentials and none are configured for it`, 401);
      this.basic = true;
    } else if (challenge.scheme === 'bearer') {
      const scope = init.scope ?? challenge.params.scope ?? '';
      this.tokens.set(scope, await this.fetchToken(challenge, scope));
    } else {
      throw new RegistryError('unauthorized', `${this.host} asks for unsupported auth scheme ${challenge.scheme}`, 401);
    }
    const second = await this.send(method, path, init);
    if (second.status === 401 || second.status === 403) {
      await second.body?.cancel();
      throw new RegistryError('unauthorized', `${this.host} refused the credentials (${second.status})`, second.status);
    }
    return second;
  }

  private async fetchToken(challenge: Challenge, scope: string): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('unauthorized', `${this.host} sent a Bearer challenge without a realm`, 401);
    const url = new URL(realm);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    if (scope) url.searchParams.set('scope', scope);
    const headers: Record<string, string> = {};
    if (this.options.credentials) headers.authorization = basicAuth(this.options.credentials);
    const res = await this.fetchOrThrow(url.toString(), { headers });
    if (!res.ok) throw new RegistryError('unauthorized', `token endpoint of ${this.host} answered ${res.status}`, res.status);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryError('unauthorized', `token endpoint of ${this.host} returned no token`);
    return token;
  }

  private send(method: string, path: string, init: { headers?: Record<string, string>; body?: Buffer; scope?: string; timeoutMs?: number }): Promise<Response> {
    const headers = { ...init.headers };
    const token = this.tokens.get(init.scope ?? '') ?? [...this.tokens.values()][0];
    if (this.basic && this.options.credentials) headers.authorization = basicAuth(this.options.credentials);
    else if (token) headers.authorization = `Bearer ${token}`;
    const url = path.startsWith('http://') || path.startsWith('https://') ? path : this.base + path;
    return this.fetchOrThrow(url, { method, headers, body: init.body, timeoutMs: init.timeoutMs });
  }

  private async fetchOrThrow(url: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer; timeoutMs?: number }): Promise<Response> {
    try {
      return await fetch(url, { method: init.method ?? 'GET', headers: init.headers, body: init.body, redirect: 'follow', signal: AbortSignal.timeout(init.timeoutMs ?? this.options.timeoutMs ?? 30_000) });
    } catch (err) {
      const e = err as Error & { cause?: { code?: string; message?: string } };
      const why = e.name === 'TimeoutError' ? 'timed out' : (e.cause?.code ?? e.cause?.message ?? e.message);
      throw new RegistryError('unavailable', `registry ${this.host} unreachable: ${why}`);
    }
  }
}

function basicAuth(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
