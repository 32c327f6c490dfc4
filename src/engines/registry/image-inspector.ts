import { assertPlatform, formatImageReference, parseImageReference } from '../../oci/references.js';
import { MANIFEST_MEDIA_TYPES, RegistryError, type Descriptor, type FetchedManifest } from './registry-client.js';
import type { RegistryResolver } from './registry-resolver.js';

export interface ImageLayer {
  digest: string;
  size_bytes: number;
  media_type: string;
  created_by: string | null;
}

export interface ImageInfo {
  reference: string;
  /** Digest of what the reference points at: the index for a multi-platform image. */
  digest: string;
  media_type: string;
  /** Digest of the platform manifest described below (equal to `digest` for a single-platform image). */
  manifest_digest: string;
  /** Config + layers of the selected platform. */
  size_bytes: number;
  platforms: string[];
  os: string;
  architecture: string;
  variant?: string;
  layers: ImageLayer[];
  config: {
    user: string;
    entrypoint: string[] | null;
    cmd: string[] | null;
    env: Record<string, string>;
    workdir: string;
    exposed_ports: string[];
    labels: Record<string, string>;
  };
  history: { created?: string; created_by?: string; empty_layer: boolean; comment?: string }[];
  created: string | null;
}

interface ImageConfigBlob {
  created?: string;
  os?: string;
  architecture?: string;
  variant?: string;
  config?: {
    User?: string;
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Env?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, unknown> | null;
    Labels?: Record<string, string> | null;
  };
  history?: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
}

/** Environment variables whose values are never shown. */
const SECRET_NAME = /pass(word|wd)?|secret|token|api_?key|private|credential|auth|access_?key/i;
const DEFAULT_PLATFORM = 'linux/amd64';
const INDEX_TYPES = new Set<string>([MANIFEST_MEDIA_TYPES.ociIndex, MANIFEST_MEDIA_TYPES.dockerList]);

export class PlatformNotFoundError extends Error {
  constructor(
    readonly wanted: string,
    readonly available: string[],
  ) {
    super(`image has no ${wanted} variant (it has ${available.join(', ') || 'none'})`);
    this.name = 'PlatformNotFoundError';
  }
}

const platformOf = (p: { os: string; architecture: string; variant?: string }) =>
  [p.os, p.architecture, p.variant].filter(Boolean).join('/');

/** Reads an image's manifest(s) and config through the distribution API. */
export class ImageInspector {
  constructor(private readonly registries: RegistryResolver) {}

  /** Resolves the reference to its current digest (HEAD only): the cache key for inspect. */
  async resolveDigest(reference: string): Promise<string> {
    const ref = parseImageReference(reference);
    if (ref.digest) return ref.digest;
    const digest = await this.registries.clientFor(ref.registry).manifestDigest(ref.repository, ref.tag!);
    if (!digest) throw new RegistryError('not_found', `${formatImageReference(ref)} not found`, 404);
    return digest;
  }

  async inspect(reference: string, platform?: string): Promise<ImageInfo> {
    if (platform) assertPlatform(platform);
    const ref = parseImageReference(reference);
    const client = this.registries.clientFor(ref.registry);
    const top = await client.getManifest(ref.repository, ref.digest ?? ref.tag!);

    let manifest: FetchedManifest = top;
    let platforms: string[] = [];
    if (INDEX_TYPES.has(top.mediaType) || top.json.manifests) {
      const images = (top.json.manifests ?? []).filter((d) => d.platform && d.platform.os !== 'unknown'); // skip attestation manifests
      platforms = images.map((d) => platformOf(d.platform!));
      const chosen = pickPlatform(images, platform ?? DEFAULT_PLATFORM, !platform);
      if (!chosen) throw new PlatformNotFoundError(platform ?? DEFAULT_PLATFORM, platforms);
      manifest = await client.getManifest(ref.repository, chosen.digest);
    }
    const configDescriptor = manifest.json.config;
    if (!configDescriptor) throw new RegistryError('protocol', `manifest ${manifest.digest} has no config`);
    const config = await client.getJsonBlob<ImageConfigBlob>(ref.repository, configDescriptor.digest);
    const layerDescriptors = manifest.json.layers ?? [];
    const history = (config.history ?? []).map((h) => ({
      created: h.created,
      created_by: h.created_by,
      empty_layer: !!h.empty_layer,
      comment: h.comment,
    }));
    const layerHistory = history.filter((h) => !h.empty_layer);
    const own =
      config.os && config.architecture
        ? platformOf({ os: config.os, architecture: config.architecture, variant: config.variant })
        : undefined;
    if (platform && !platforms.length && own && own !== platform) throw new PlatformNotFoundError(platform, [own]);

    return {
      reference: formatImageReference(ref),
      digest: top.digest,
      media_type: top.mediaType,
      manifest_digest: manifest.digest,
      size_bytes: configDescriptor.size + layerDescriptors.reduce((sum, l) => sum + l.size, 0),
      platforms: platforms.length ? platforms : own ? [own] : [],
      os: config.os ?? '',
      architecture: config.architecture ?? '',
      ...(config.variant ? { variant: config.variant } : {}),
      layers: layerDescriptors.map((l, i) => ({
        digest: l.digest,
        size_bytes: l.size,
        media_type: l.mediaType,
        created_by: layerHistory[i]?.created_by ?? null,
      })),
      config: {
        user: config.config?.User ?? '',
        entrypoint: config.config?.Entrypoint ?? null,
        cmd: config.config?.Cmd ?? null,
        env: redactEnv(config.config?.Env ?? []),
        workdir: config.config?.WorkingDir ?? '',
        exposed_ports: Object.keys(config.config?.ExposedPorts ?? {}),
        labels: config.config?.Labels ?? {},
      },
      history,
      created: config.created ?? null,
    };
  }
}

/** Exact match first; when the caller named no platform, fall back to the first image. */
function pickPlatform(images: Descriptor[], wanted: string, fallback: boolean): Descriptor | undefined {
  const exact = images.find((d) => platformOf(d.platform!) === wanted);
  if (exact) return exact;
  const [os, arch] = wanted.split('/');
  const sameArch = images.find((d) => d.platform!.os === os && d.platform!.architecture === arch && wanted.split('/').length === 2);
  return sameArch ?? (fallback ? images[0] : undefined);
}

export function redactEnv(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env) {
    const i = entry.indexOf('=');
    const name = i >= 0 ? entry.slice(0, i) : entry;
    const value = i >= 0 ? entry.slice(i + 1) : '';
    out[name] = SECRET_NAME.test(name) ? '[redacted]' : value;
  }
  return out;
}
