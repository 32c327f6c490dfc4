import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { assertRepository, assertTag } from '../references.js';

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export class RegistryError extends Error {
  constructor(message: string, readonly status?: number) {
    super(message);
    this.name = 'RegistryError';
  }
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/**
 * Minimal OCI distribution client: enough to check a registry is up, ask whether a
 * manifest exists and push an OCI image layout (how the base image is seeded).
 */
export class RegistryClient {
  private readonly base: string;

  constructor(hostPort: string, options: { insecure?: boolean; timeoutMs?: number } = {}) {
    this.base = `${options.insecure === false ? 'https' : 'http'}://${hostPort}`;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }
  private readonly timeoutMs: number;

  /** Resolves when the registry answers the API root (200, or 401 for one that wants auth). */
  async ping(timeoutMs = 2_000): Promise<void> {
    const res = await this.request('GET', '/v2/', {}, undefined, timeoutMs);
    if (res.status !== 200 && res.status !== 401) throw new RegistryError(`registry answered ${res.status} on /v2/`, res.status);
  }

  /** The manifest digest of repository:reference, or undefined when it does not exist. */
  async manifestDigest(repository: string, reference: string): Promise<string | undefined> {
    assertRepository(repository);
    const res = await this.request('HEAD', `/v2/${repository}/manifests/${reference}`, { accept: MANIFEST_TYPES });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new RegistryError(`HEAD manifest ${repository}:${reference} answered ${res.status}`, res.status);
    return res.headers.get('docker-content-digest') ?? undefined;
  }

  /** Pushes the first image of an OCI layout directory as repository:tag. Returns its digest. */
  async pushLayout(layoutDir: string, repository: string, tag: string): Promise<string> {
    assertRepository(repository);
    assertTag(tag);
    const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests: Descriptor[] };
    const top = index.manifests[0];
    if (!top) throw new RegistryError(`${layoutDir}/index.json lists no image`);
    const manifestBytes = await this.readBlob(layoutDir, top.digest);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
    for (const blob of [manifest.config, ...manifest.layers]) await this.pushBlob(layoutDir, repository, blob.digest);
    const res = await this.request('PUT', `/v2/${repository}/manifests/${tag}`, { 'content-type': top.mediaType }, manifestBytes);
    if (res.status !== 201) throw new RegistryError(`PUT manifest ${repository}:${tag} answered ${res.status}: ${await res.text()}`, res.status);
    return top.digest;
  }

  private async pushBlob(layoutDir: string, repository: string, digest: string): Promise<void> {
    const head = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`);
    if (head.status === 200) return;
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`);
    const location = start.headers.get('location');
    if (start.status !== 202 || !location) throw new RegistryError(`blob upload to ${repository} not accepted (${start.status})`, start.status);
    const url = new URL(location, this.base);
    url.searchParams.set('digest', digest);
    const body = await this.readBlob(layoutDir, digest);
    const put = await this.request('PUT', url.pathname + url.search, { 'content-type': 'application/octet-stream' }, body);
    if (put.status !== 201) throw new RegistryError(`blob ${digest} upload answered ${put.status}`, put.status);
  }

  private async readBlob(layoutDir: string, digest: string): Promise<Buffer> {
    const [algorithm, hex] = digest.split(':');
    if (algorithm !== 'sha256' || !/^[a-f0-9]{64}$/.test(hex ?? '')) throw new RegistryError(`unsupported digest ${digest}`);
    return readFile(join(layoutDir, 'blobs', 'sha256', hex!));
  }

  private async request(method: string, path: string, headers: Record<string, string> = {}, body?: Buffer, timeoutMs = this.timeoutMs): Promise<Response> {
    try {
      return await fetch(this.base + path, { method, headers, body, signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new RegistryError(`registry ${this.base} unreachable: ${cause}`);
    }
  }
}
