import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { Logger } from '@nestjs/common';
import { RegistryError } from './registry-errors.js';
import type { RegistryGuard } from './registry-guard.js';

/**
 * One HTTP exchange with a registry, over node:http(s) rather than fetch: only there can
 * the connection itself be guarded (a `lookup` per request, see RegistryGuard), and
 * redirects are left to RegistryHttp, which decides where they may lead. The answer is a
 * web Response whose body streams unread, so callers cap it while it arrives.
 */
const agents = { http: new HttpAgent({ keepAlive: true }), https: new HttpsAgent({ keepAlive: true }) };
const log = new Logger('RegistryHttp');
const NULL_BODY = new Set([101, 103, 204, 205, 304]);

export interface TransportRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: Buffer;
  signal: AbortSignal;
}

/**
 * The one error a tenant sees when a registry cannot be reached, whatever the cause
 * (refused, reset, not HTTP, TLS, timeout): distinct causes would tell a prober what
 * listens where. The cause goes to the server log only.
 */
export function unavailable(host: string, cause: unknown): RegistryError {
  const e = cause as Error & { code?: string; cause?: { code?: string; message?: string } };
  log.warn(`registry ${host} unreachable: ${e?.code ?? e?.cause?.code ?? e?.name ?? ''} ${e?.message ?? String(cause)}`);
  return new RegistryError('unavailable', `registry ${host} is unavailable`);
}

export function send(req: TransportRequest, guard: RegistryGuard | undefined): Promise<Response> {
  const { url } = req;
  const https = url.protocol === 'https:';
  if (!https && url.protocol !== 'http:') return Promise.reject(new RegistryError('protocol', `registry named a ${url.protocol} URL`));
  const port = Number(url.port) || (https ? 443 : 80);
  const literal = guard?.literalProblem(url.hostname.replace(/^\[|\]$/g, ''), port);
  if (literal) return Promise.reject(new RegistryError('forbidden', `refused: ${literal}`));
  return new Promise((resolve, reject) => {
    const request = (https ? httpsRequest : httpRequest)(url, {
      method: req.method,
      headers: req.body ? { ...req.headers, 'content-length': String(req.body.length) } : req.headers,
      agent: https ? agents.https : agents.http,
      signal: req.signal,
      ...(guard ? { lookup: guard.lookupFor(port) } : {}),
    });
    request.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EREGISTRYFORBIDDEN') reject(new RegistryError('forbidden', `refused: ${err.message}`));
      else reject(unavailable(url.host, err));
    });
    request.on('response', (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 599) {
        res.destroy();
        return reject(new RegistryError('protocol', `registry ${url.host} answered status ${status}`));
      }
      const headers = new Headers();
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
        try {
          headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        } catch {
          /* a header fetch would refuse too; not one a registry needs */
        }
      }
      const empty = req.method === 'HEAD' || NULL_BODY.has(status);
      if (empty) res.resume();
      // Read errors (reset, timeout) surface as the same uniform error as connect errors.
      res.on('error', () => undefined);
      const body = empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>);
      resolve(new Response(body, { status, headers }));
    });
    request.end(req.body);
  });
}

/**
 * A response body as bytes, at most `limit` of them: counted while it streams and
 * cancelled (the connection closed) as soon as it passes the limit, whatever
 * Content-Length said or did not say.
 */
export async function readCapped(res: Response, limit: number, what: string, host: string): Promise<Buffer> {
  const declared = res.headers.get('content-length');
  if (declared !== null && Number(declared) > limit) {
    await res.body?.cancel().catch(() => undefined);
    throw new RegistryError('protocol', `${what}: answer of ${declared} bytes is over the ${limit}-byte limit`);
  }
  if (!res.body) return Buffer.alloc(0);
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let next: Awaited<ReturnType<typeof reader.read>>;
    try {
      next = await reader.read();
    } catch (err) {
      throw unavailable(host, err);
    }
    if (next.done) break;
    total += next.value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw new RegistryError('protocol', `${what}: answer is over the ${limit}-byte limit (stopped reading)`);
    }
    chunks.push(next.value);
  }
  return Buffer.concat(chunks, total);
}

/** JSON from a registry: anything that does not parse is the registry's fault (REGISTRY_ERROR), not ours. */
export function parseRegistryJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch {
    throw new RegistryError('protocol', `${what}: registry answered something that is not JSON`);
  }
}
