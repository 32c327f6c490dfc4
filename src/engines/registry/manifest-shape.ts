import { assertDigest } from '../../oci/references.js';
import { RegistryError } from './registry-errors.js';
import type { Descriptor, FetchedManifest } from './registry-client.js';

const INDEX_TYPES = ['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json'];
const IMAGE_TYPES = ['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json'];
/**
 * More entries than any builder makes. Scan, sign, verify and the platform check do
 * work per platform (and per layer): a hostile index of thousands of entries in a
 * tenant's own repository would otherwise make one job start thousands of tool runs.
 */
export const MAX_INDEX_ENTRIES = 128;
export const MAX_LAYERS = 1024;
/** Content types a registry may serve a manifest under without saying which one it is. */
const GENERIC_TYPES = new Set(['', 'application/json', 'application/octet-stream']);

/**
 * A manifest as the spec describes it, or RegistryError('protocol'): what a registry
 * sends is input like any other, and a wrong shape (layers that are no list, a digest
 * that is no digest) would otherwise surface as a TypeError, a 500, or a bad-reference
 * error blamed on the tenant.
 */
export function checkManifest(value: unknown, what: string): FetchedManifest['json'] {
  const fail = (why: string): never => {
    throw new RegistryError('protocol', `${what}: not a valid manifest (${why})`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('not a JSON object');
  const json = value as Record<string, unknown>;
  if (json.mediaType !== undefined && typeof json.mediaType !== 'string') fail('mediaType is not a string');
  const descriptor = (d: unknown, at: string): Descriptor => {
    if (d === null || typeof d !== 'object' || Array.isArray(d)) return fail(`${at} is not a descriptor`);
    const x = d as Record<string, unknown>;
    if (typeof x.digest !== 'string') return fail(`${at}.digest is missing`);
    try {
      assertDigest(x.digest);
    } catch {
      fail(`${at}.digest is not a digest`);
    }
    if (typeof x.size !== 'number' || !Number.isSafeInteger(x.size) || x.size < 0) fail(`${at}.size is not a byte count`);
    if (typeof x.mediaType !== 'string') fail(`${at}.mediaType is missing`);
    const p = x.platform as Record<string, unknown> | undefined;
    if (
      p !== undefined &&
      (p === null ||
        typeof p !== 'object' ||
        typeof p.os !== 'string' ||
        typeof p.architecture !== 'string' ||
        (p.variant !== undefined && typeof p.variant !== 'string'))
    )
      fail(`${at}.platform is not os/architecture`);
    return d as Descriptor;
  };
  for (const key of ['manifests', 'layers'] as const) {
    if (json[key] === undefined) continue;
    if (!Array.isArray(json[key])) fail(`${key} is not a list`);
    const max = key === 'manifests' ? MAX_INDEX_ENTRIES : MAX_LAYERS;
    if ((json[key] as unknown[]).length > max) fail(`${(json[key] as unknown[]).length} ${key}, more than the ${max} stevedore handles`);
    (json[key] as unknown[]).forEach((d, i) => descriptor(d, `${key}.${i}`));
  }
  if (json.config !== undefined) descriptor(json.config, 'config');
  return json;
}

/**
 * The manifest's media type: its own field, else the Content-Type; one of the four this
 * client asks for. A generic type is judged by the shape (an index has `manifests`).
 */
export function manifestMediaType(json: FetchedManifest['json'], contentType: string | null, what: string): string {
  const declared = json.mediaType ?? contentType?.split(';')[0]!.trim().toLowerCase() ?? '';
  if (INDEX_TYPES.includes(declared) || IMAGE_TYPES.includes(declared)) return declared;
  if (GENERIC_TYPES.has(declared)) return json.manifests ? INDEX_TYPES[0]! : IMAGE_TYPES[0]!;
  throw new RegistryError(
    'protocol',
    `${what}: registry answered media type ${JSON.stringify(declared.slice(0, 100))}, not an image manifest or index`,
  );
}
