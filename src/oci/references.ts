/**
 * Validation and parsing of values that reach registries and tool command lines.
 * Anything that could be read as an option (leading '-'), hide a second argument
 * (whitespace) or escape a path is refused here, once, before any job is queued.
 */
export class InvalidReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

// Grammar of github.com/distribution/reference, written out here.
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?$`);
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;

export const DOCKER_HUB = 'docker.io';

export interface ImageReference {
  /** Registry host[:port]; docker.io for Docker Hub. */
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
}

export function assertRepository(name: string): void {
  if (name.length > 255 || !REPOSITORY.test(name)) throw new InvalidReferenceError(`invalid repository name: ${JSON.stringify(name)}`);
}

export function assertTag(tag: string): void {
  if (!TAG.test(tag)) throw new InvalidReferenceError(`invalid tag: ${JSON.stringify(tag)}`);
}

export function assertDigest(digest: string): void {
  if (!DIGEST.test(digest)) throw new InvalidReferenceError(`invalid digest: ${JSON.stringify(digest)}`);
  const [algorithm, hex] = digest.split(':') as [string, string];
  if (algorithm === 'sha256' && !/^[a-f0-9]{64}$/.test(hex))
    throw new InvalidReferenceError(`invalid sha256 digest: ${JSON.stringify(digest)} (want 64 lowercase hex characters)`);
  if (algorithm === 'sha512' && !/^[a-f0-9]{128}$/.test(hex))
    throw new InvalidReferenceError(`invalid sha512 digest: ${JSON.stringify(digest)}`);
}

/** `os/arch[/variant]`, e.g. linux/amd64 or linux/arm/v7. */
export function assertPlatform(platform: string): void {
  if (!PLATFORM.test(platform))
    throw new InvalidReferenceError(`invalid platform: ${JSON.stringify(platform)} (want os/arch[/variant], e.g. linux/amd64)`);
}

/**
 * Parses `[registry/]repository[:tag][@digest]` the way Docker does: a first component
 * with a dot or colon, or `localhost`, is a registry; otherwise Docker Hub, where
 * one-component names live under `library/`. No tag and no digest means `latest`.
 */
export function parseImageReference(input: string): ImageReference {
  if (typeof input !== 'string' || input.length === 0) throw new InvalidReferenceError('image reference is empty');
  if (input.length > 1024) throw new InvalidReferenceError('image reference is longer than 1024 characters');
  if (input.startsWith('-')) throw new InvalidReferenceError(`image reference must not start with '-': ${JSON.stringify(input)}`);
  if (/[\s\x00-\x1f\x7f]/.test(input))
    throw new InvalidReferenceError(`image reference contains whitespace or control characters: ${JSON.stringify(input)}`);

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    assertDigest(digest);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    assertTag(tag);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const firstSlash = rest.indexOf('/');
  if (firstSlash > 0) {
    const first = rest.slice(0, firstSlash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(firstSlash + 1);
      if (!DOMAIN.test(registry)) throw new InvalidReferenceError(`invalid registry host: ${JSON.stringify(registry)}`);
    }
  }
  if (registry === 'index.docker.io' || registry === 'registry-1.docker.io') registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  assertRepository(repository);
  if (!tag && !digest) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** Canonical string form: registry/repository[:tag][@digest]. */
export function formatImageReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** Loopback registries speak plain HTTP (as Docker and BuildKit assume). */
export function isLoopbackRegistry(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.split(':')[0]!;
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/** `host`, `host:port`, `[v6]:port` → host and optional port. */
export function parseHostPort(entry: string): { host: string; port?: number } {
  const bracket = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(entry);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : undefined };
  const m = /^([^:]+)(?::(\d{1,5}))?$/.exec(entry);
  if (m) return { host: m[1]!, port: m[2] ? Number(m[2]) : undefined };
  return { host: entry }; // a bare IPv6 address
}
