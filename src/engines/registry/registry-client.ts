import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertDigest, assertRepository, assertTag, isLoopbackRegistry } from '../../oci/references.js';
import type { RegistryCredentials } from './docker-config.js';
import { RegistryError } from './registry-errors.js';
import { RegistryGuard } from './registry-guard.js';
import { RegistryHttp } from './registry-http.js';
import { checkManifest, manifestMediaType } from './manifest-shape.js';
import { parseRegistryJson, readCapped } from './registry-transport.js';

export { RegistryError } from './registry-errors.js';

export const MANIFEST_MEDIA_TYPES = {
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
} as const;
const ACCEPT_MANIFESTS = Object.values(MANIFEST_MEDIA_TYPES).join(', ');
/** Manifests and configs are small; anything bigger is not what we asked for. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * A blob read into memory (push copies) when its size is not known: layers are bounded
 * by the manifest's descriptor, this only stops a registry that streams without end.
 */
const MAX_BLOB_BYTES = 2 * 1024 ** 3;
/** Error bodies are kept for a message only. */
const MAX_ERROR_TEXT_BYTES = 4096;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

export interface FetchedManifest {
  mediaType: string;
  digest: string;
  size: number;
  /** The manifest exactly as served: its digest is over these bytes. */
  bytes: Buffer;
  json: { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
}

export interface RegistryClientOptions {
  /** Plain HTTP; by default only for loopback registries. */
  insecure?: boolean;
  credentials?: RegistryCredentials;
  timeoutMs?: number;
  /** Where requests may go (RegistryGuard); absent for the server's own registry. */
  guard?: RegistryGuard;
}

/** A RegistryClient's options as plain data (the guard as its entries). */
export interface RegistryClientSettings {
  host: string;
  insecure: boolean;
  credentials?: RegistryCredentials;
  timeoutMs?: number;
  guard?: string[];
}

/**
 * OCI distribution client: check a registry is up, read manifests and blobs (with
 * the token auth dance) and push an OCI image layout (how the base image is seeded).
 */
export class RegistryClient {
  private readonly http: RegistryHttp;

  constructor(
    readonly host: string,
    private readonly options: RegistryClientOptions = {},
  ) {
    const insecure = options.insecure ?? isLoopbackRegistry(host);
    this.http = new RegistryHttp(host, {
      scheme: insecure ? 'http' : 'https',
      credentials: options.credentials,
      timeoutMs: options.timeoutMs,
      guard: options.guard,
    });
  }

  /**
   * What another process needs to open an equal client (analysis-runner.ts hands it to its
   * child over IPC): the credentials are in it, so it goes nowhere else.
   */
  get settings(): RegistryClientSettings {
    return {
      host: this.host,
      insecure: this.options.insecure ?? isLoopbackRegistry(this.host),
      ...(this.options.credentials ? { credentials: this.options.credentials } : {}),
      ...(this.options.timeoutMs ? { timeoutMs: this.options.timeoutMs } : {}),
      ...(this.options.guard ? { guard: [...this.options.guard.entries] } : {}),
    };
  }

  /** The client `settings` describe. */
  static fromSettings(settings: RegistryClientSettings): RegistryClient {
    const { host, guard, ...options } = settings;
    return new RegistryClient(host, { ...options, ...(guard ? { guard: new RegistryGuard(guard) } : {}) });
  }

  /** The authenticated HTTP session, for callers that stream blobs themselves (image analysis). */
  get session(): RegistryHttp {
    return this.http;
  }

  /** Resolves when the registry answers the API root (200, or 401 for one that wants auth). */
  async ping(timeoutMs = 2_000): Promise<void> {
    const res = await this.http.request('GET', '/v2/', { timeoutMs }).catch((err: unknown) => {
      if (err instanceof RegistryError && err.kind === 'unauthorized') return undefined; // up, wants auth
      throw err;
    });
    if (res && res.status !== 200) throw new RegistryError('unavailable', `registry answered ${res.status} on /v2/`, res.status);
  }

  /** The manifest digest of repository:reference, or undefined when it does not exist. */
  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    assertRepository(repository);
    const res = await this.http.request('HEAD', `/v2/${repository}/manifests/${reference}`, {
      headers: { accept: ACCEPT_MANIFESTS },
      scope: pull(repository),
    });
    if (res.status === 404) return undefined;
    if (!res.ok) throw statusError(res.status, `HEAD manifest ${repository}:${reference}`);
    return res.headers.get('docker-content-digest') ?? undefined;
  }

  /** A manifest or index by tag or digest; the digest is computed from the bytes. */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    assertRepository(repository);
    if (reference.includes(':')) assertDigest(reference);
    else assertTag(reference);
    const res = await this.http.request('GET', `/v2/${repository}/manifests/${reference}`, {
      headers: { accept: ACCEPT_MANIFESTS },
      scope: pull(repository),
    });
    if (res.status === 404) throw new RegistryError('not_found', `${this.host}/${repository}:${reference} not found`, 404);
    if (!res.ok) throw statusError(res.status, `GET manifest ${repository}:${reference}`);
    const what = `manifest ${repository}:${reference}`;
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, what, this.host);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    if (reference.startsWith('sha256:') && reference !== digest)
      throw new RegistryError('protocol', `manifest ${reference} has digest ${digest}`);
    const json = checkManifest(parseRegistryJson<unknown>(bytes, what), what);
    const mediaType = manifestMediaType(json, res.headers.get('content-type'), what);
    return { mediaType, digest, size: bytes.length, bytes, json };
  }

  /** Stores a manifest under a tag or its digest; answers the digest the registry computed. */
  async putManifest(repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    assertRepository(repository);
    if (reference.includes(':')) assertDigest(reference);
    else assertTag(reference);
    const res = await this.http.request('PUT', `/v2/${repository}/manifests/${reference}`, {
      headers: { 'content-type': mediaType },
      body: bytes,
      scope: push(repository),
    });
    if (res.status !== 201) throw statusError(res.status, `PUT manifest ${repository}:${reference}: ${await errorText(res)}`);
    return res.headers.get('docker-content-digest') ?? '';
  }

  /** A blob's bytes (layers can be large: held in memory, checked against the digest), at most `size` of them when known. */
  async getBlob(repository: string, digest: string, size?: number): Promise<Buffer> {
    assertRepository(repository);
    assertDigest(digest);
    const res = await this.http.request('GET', `/v2/${repository}/blobs/${digest}`, { scope: pull(repository), timeoutMs: 600_000 });
    if (res.status === 404) throw new RegistryError('not_found', `blob ${digest} not found in ${this.host}/${repository}`, 404);
    if (!res.ok) throw statusError(res.status, `GET blob ${digest}`);
    const bytes = await readCapped(
      res,
      size !== undefined && Number.isSafeInteger(size) && size >= 0 ? Math.min(size, MAX_BLOB_BYTES) : MAX_BLOB_BYTES,
      `blob ${digest}`,
      this.host,
    );
    if (digest.startsWith('sha256:') && `sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest)
      throw new RegistryError('protocol', `blob ${digest} does not match its digest`);
    return bytes;
  }

  /** A small JSON blob (an image config), checked against its digest. */
  async getJsonBlob<T>(repository: string, digest: string): Promise<T> {
    assertRepository(repository);
    assertDigest(digest);
    const res = await this.http.request('GET', `/v2/${repository}/blobs/${digest}`, { scope: pull(repository) });
    if (res.status === 404) throw new RegistryError('not_found', `blob ${digest} not found in ${this.host}/${repository}`, 404);
    if (!res.ok) throw statusError(res.status, `GET blob ${digest}`);
    const bytes = await readCapped(res, MAX_MANIFEST_BYTES, `blob ${digest}`, this.host);
    if (digest.startsWith('sha256:') && `sha256:${createHash('sha256').update(bytes).digest('hex')}` !== digest)
      throw new RegistryError('protocol', `blob ${digest} does not match its digest`);
    const json = parseRegistryJson<T>(bytes, `blob ${digest}`);
    if (json === null || typeof json !== 'object' || Array.isArray(json))
      throw new RegistryError('protocol', `blob ${digest} is not a JSON object`);
    return json;
  }

  /**
   * Pushes what an OCI layout directory's index.json names first as repository:tag: an
   * image (its config and layers, then the manifest), or an image index (every image it
   * lists, by digest, then the index under the tag). Returns its digest.
   */
  async pushLayout(layoutDir: string, repository: string, tag: string): Promise<string> {
    assertRepository(repository);
    assertTag(tag);
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    const top = index.manifests[0];
    if (!top) throw new RegistryError('protocol', `${layoutDir}/index.json lists no image`);
    await this.pushLayoutManifest(layoutDir, repository, top, tag, 0);
    return top.digest;
  }

  private async pushLayoutManifest(layoutDir: string, repository: string, descriptor: Descriptor, reference: string, depth: number) {
    const bytes = await readLayoutBlob(layoutDir, descriptor.digest);
    const manifest = JSON.parse(bytes.toString('utf8')) as FetchedManifest['json'];
    if (manifest.manifests) {
      if (depth > 0) throw new RegistryError('protocol', `${layoutDir}: index ${descriptor.digest} is nested in another index`);
      for (const child of manifest.manifests) await this.pushLayoutManifest(layoutDir, repository, child, child.digest, depth + 1);
    } else {
      for (const blob of [manifest.config, ...(manifest.layers ?? [])])
        if (blob) await this.ensureBlob(repository, blob.digest, () => readLayoutBlob(layoutDir, blob.digest));
    }
    await this.putManifest(repository, reference, bytes, descriptor.mediaType);
  }

  /** Uploads a blob unless the repository already has it; `read` runs only when needed. */
  async ensureBlob(repository: string, digest: string, read: () => Promise<Buffer>): Promise<void> {
    const scope = push(repository);
    const head = await this.http.request('HEAD', `/v2/${repository}/blobs/${digest}`, { scope });
    if (head.status === 200) return;
    const start = await this.http.request('POST', `/v2/${repository}/blobs/uploads/`, { scope });
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw statusError(start.status, `blob upload to ${repository} not accepted`);
    const url = new URL(location, this.http.base);
    url.searchParams.set('digest', digest);
    const put = await this.http.request('PUT', url.toString(), {
      headers: { 'content-type': 'application/octet-stream' },
      body: await read(),
      scope,
    });
    if (put.status !== 201) throw statusError(put.status, `blob ${digest} upload`);
  }
}

const pull = (repository: string) => `repository:${repository}:pull`;
const push = (repository: string) => `repository:${repository}:pull,push`;

function statusError(status: number, what: string): RegistryError {
  if (status === 401 || status === 403) return new RegistryError('unauthorized', `${what}: access denied (${status})`, status);
  if (status === 404) return new RegistryError('not_found', `${what}: not found`, status);
  if (status >= 500 || status === 429) return new RegistryError('unavailable', `${what}: registry answered ${status}`, status);
  return new RegistryError('protocol', `${what}: registry answered ${status}`, status);
}

async function errorText(res: Response): Promise<string> {
  const bytes = await readCapped(res, 1024 ** 2, 'error answer', '').catch(() => Buffer.alloc(0));
  return bytes.subarray(0, MAX_ERROR_TEXT_BYTES).toString('utf8');
}

async function readLayoutBlob(layoutDir: string, digest: string): Promise<Buffer> {
  assertDigest(digest);
  const [algorithm, hex] = digest.split(':') as [string, string];
  return readFile(join(layoutDir, 'blobs', algorithm, hex));
}
