import type { RegistryCredentials } from './docker-config.js';
import { RegistryError } from './registry-errors.js';
import type { RegistryGuard } from './registry-guard.js';
import { parseRegistryJson, readCapped, send } from './registry-transport.js';

export interface RegistryHttpOptions {
  scheme: 'http' | 'https';
  credentials?: RegistryCredentials;
  timeoutMs?: number;
  /**
   * Where requests may go (tenant-named registries: see RegistryResolver). Absent only for
   * the server's own registry (seeding, readiness), which the operator configured.
   */
  guard?: RegistryGuard;
}

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

type RequestInit = { headers?: Record<string, string>; body?: Buffer; scope?: string; timeoutMs?: number };

const MAX_REDIRECTS = 5;
/** A token answer is a few KiB; a realm that sends more is not a token service. */
const MAX_TOKEN_BYTES = 256 * 1024;

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
 *
 * Where it goes (issue 14): every connection passes the guard (when there is one);
 * redirects are followed by hand, to the same origin with credentials, elsewhere (a
 * blob store, e.g. a CDN) without them and only where the guard lets a connection go
 * (public addresses, configured hosts); never from https down to http. A token realm
 * likewise: the registry's own origin, or a host the guard admits.
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

  async request(method: string, path: string, init: RequestInit = {}): Promise<Response> {
    const first = await this.send(method, path, init);
    if (first.status !== 401) return first;
    const challenge = parseChallenge(first.headers.get('www-authenticate') ?? '');
    await first.body?.cancel().catch(() => undefined);
    if (!challenge) throw new RegistryError('unauthorized', `${this.host} refused the request (401) without a usable challenge`, 401);
    if (challenge.scheme === 'basic') {
      if (!this.options.credentials)
        throw new RegistryError('unauthorized', `${this.host} needs credentials and none are configured for it`, 401);
      this.basic = true;
    } else if (challenge.scheme === 'bearer') {
      const scope = init.scope ?? challenge.params.scope ?? '';
      this.tokens.set(scope, await this.fetchToken(challenge, scope));
    } else {
      throw new RegistryError('unauthorized', `${this.host} asks for unsupported auth scheme ${challenge.scheme}`, 401);
    }
    const second = await this.send(method, path, init);
    if (second.status === 401 || second.status === 403) {
      await second.body?.cancel().catch(() => undefined);
      throw new RegistryError('unauthorized', `${this.host} refused the credentials (${second.status})`, second.status);
    }
    return second;
  }

  private async fetchToken(challenge: Challenge, scope: string): Promise<string> {
    const realm = challenge.params.realm;
    if (!realm) throw new RegistryError('unauthorized', `${this.host} sent a Bearer challenge without a realm`, 401);
    let url: URL;
    try {
      url = new URL(realm);
    } catch {
      throw new RegistryError('protocol', `${this.host} named a token realm that is not a URL`);
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    if (scope) url.searchParams.set('scope', scope);
    // Credentials go to the realm the registry names (as Docker does), but never in clear
    // text away from the registry's own origin.
    const own = url.origin === new URL(this.base).origin;
    if (!own && url.protocol !== 'https:' && this.options.scheme === 'https')
      throw new RegistryError('forbidden', `${this.host} named a plain-HTTP token realm`);
    const headers: Record<string, string> = {};
    if (this.options.credentials) headers.authorization = basicAuth(this.options.credentials);
    const res = await this.exchange('GET', url, headers, undefined, this.options.timeoutMs);
    if (!res.ok) {
      await res.body?.cancel().catch(() => undefined);
      throw new RegistryError('unauthorized', `token endpoint of ${this.host} answered ${res.status}`, res.status);
    }
    const body = parseRegistryJson<{ token?: unknown; access_token?: unknown } | null>(
      await readCapped(res, MAX_TOKEN_BYTES, `token from ${this.host}`, this.host),
      `token from ${this.host}`,
    );
    const token = body?.token ?? body?.access_token;
    if (typeof token !== 'string' || !token) throw new RegistryError('unauthorized', `token endpoint of ${this.host} returned no token`);
    return token;
  }

  private send(method: string, path: string, init: RequestInit): Promise<Response> {
    const headers = { ...init.headers };
    const token = this.tokens.get(init.scope ?? '') ?? [...this.tokens.values()][0];
    if (this.basic && this.options.credentials) headers.authorization = basicAuth(this.options.credentials);
    else if (token) headers.authorization = `Bearer ${token}`;
    let url: URL;
    try {
      url = new URL(path.startsWith('http://') || path.startsWith('https://') ? path : this.base + path);
    } catch {
      throw new RegistryError('protocol', `${this.host} named a location that is not a URL`);
    }
    // An upload Location may name another host: the same rules as a redirect.
    if (url.origin !== new URL(this.base).origin) delete headers.authorization;
    return this.exchange(method, url, headers, init.body, init.timeoutMs ?? this.options.timeoutMs);
  }

  /** One request and its redirects; one time limit for all of it, body included. */
  private async exchange(
    method: string,
    start: URL,
    headers: Record<string, string>,
    body: Buffer | undefined,
    timeoutMs = 30_000,
  ): Promise<Response> {
    const signal = AbortSignal.timeout(timeoutMs);
    let url = start;
    for (let hop = 0; ; hop++) {
      const res = await send({ method, url, headers, body, signal }, this.options.guard);
      const location = res.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(res.status) || !location) return res;
      await res.body?.cancel().catch(() => undefined);
      if (hop >= MAX_REDIRECTS) throw new RegistryError('protocol', `${this.host} redirected more than ${MAX_REDIRECTS} times`);
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new RegistryError('protocol', `${this.host} redirected to something that is not a URL`);
      }
      if (next.protocol !== 'http:' && next.protocol !== 'https:')
        throw new RegistryError('forbidden', `${this.host} redirected to a ${next.protocol} URL`);
      if (url.protocol === 'https:' && next.protocol === 'http:')
        throw new RegistryError('forbidden', `${this.host} redirected from https to plain http`);
      if (next.origin !== url.origin) {
        const { authorization: _dropped, ...rest } = headers;
        headers = rest;
      }
      if (res.status === 303 || ((res.status === 301 || res.status === 302) && method !== 'GET' && method !== 'HEAD')) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
  }
}

function basicAuth(c: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}
