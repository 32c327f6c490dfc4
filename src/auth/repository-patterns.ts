import { DOCKER_HUB, InvalidReferenceError, parseImageReference } from '../oci/references.js';

/**
 * Repository patterns of API keys (docs/tenancy.md, "Repositories per tenant").
 *
 *   registry.example:5000/team-a/app    exactly that repository
 *   registry.example:5000/team-a/*      one path segment below team-a (`*` never crosses `/`)
 *   registry.example:5000/team-a/**     anything below team-a, at any depth (only as the last segment)
 *   *\/team-a/**                         team-a on every registry (a first segment with `*` is a host)
 *   debian, library/*                    Docker Hub names, canonical like references: docker.io/library/…
 *
 * Patterns name repositories: no tag, no digest. Both a pattern and a reference are
 * compared in canonical form (`host/repository`, host lowercased, Docker Hub as
 * docker.io with one-segment names under library/), so `debian:12`, `docker.io/debian`
 * and `index.docker.io/library/debian` are the same repository.
 */
export const MAX_PATTERNS = 64;
const MAX_PATTERN_LENGTH = 300;
const HOST_PATTERN = /^(?:[A-Za-z0-9*](?:[A-Za-z0-9.*-]*[A-Za-z0-9*])?|\[[0-9a-fA-F:]+\])(?::(?:\d{1,5}|\*))?$/;
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io']);

/** A parsed pattern: the host glob, the path globs and whether `/**` ends it. */
interface Pattern {
  segments: string[];
  deep: boolean;
}

const canonicalHost = (host: string) => {
  const lower = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(lower) ? DOCKER_HUB : lower;
};

/** `host/repository` of a reference, the form patterns are matched against. */
export function canonicalRepository(reference: string): string {
  const ref = parseImageReference(reference);
  return `${canonicalHost(ref.registry)}/${ref.repository}`;
}

/** Canonical text of a pattern; throws InvalidReferenceError with the reason. */
export function normalizePattern(input: string): string {
  if (typeof input !== 'string' || !input) throw new InvalidReferenceError('pattern is empty');
  if (input.length > MAX_PATTERN_LENGTH) throw new InvalidReferenceError(`pattern is longer than ${MAX_PATTERN_LENGTH} characters`);
  if (/[\s\x00-\x1f\x7f]/.test(input)) throw new InvalidReferenceError('pattern contains whitespace or control characters');
  const parts = input.split('/');
  // Same rule as references, plus: a first segment with `*` is a host glob.
  const first = parts[0]!;
  const hasHost = parts.length > 1 && (/[.:*[]/.test(first) || first === 'localhost');
  const host = hasHost ? canonicalHost(first) : DOCKER_HUB;
  const path = hasHost ? parts.slice(1) : parts;
  if (hasHost && !HOST_PATTERN.test(host)) throw new InvalidReferenceError(`invalid registry host in pattern: ${JSON.stringify(first)}`);
  const deep = path[path.length - 1] === '**';
  const globs = deep ? path.slice(0, -1) : path;
  if (deep && !globs.length && !hasHost)
    throw new InvalidReferenceError('`**` needs a registry before it, e.g. registry.example/** or */team-a/**');
  for (const glob of globs) {
    if (glob.includes('**')) throw new InvalidReferenceError('`**` may only be the last segment (anything below)');
    if (/[:@]/.test(glob)) throw new InvalidReferenceError('a pattern names repositories: no tag or digest');
  }
  // Each `*` stands for at least one path character here, so the literal parts must fit the grammar.
  if (globs.length) {
    try {
      parseImageReference(`host.example/${globs.map((g) => g.replaceAll('*', 'a')).join('/')}`);
    } catch {
      throw new InvalidReferenceError(
        `invalid repository in pattern: ${JSON.stringify(globs.join('/'))} (lowercase letters, digits and . _ - between slashes)`,
      );
    }
  }
  // Docker Hub's one-segment names live under library/, as in references.
  const canonicalPath = host === DOCKER_HUB && globs.length === 1 && !deep ? ['library', ...globs] : globs;
  return [host, ...canonicalPath, ...(deep ? ['**'] : [])].join('/');
}

function parse(pattern: string): Pattern {
  const segments = normalizePattern(pattern).split('/');
  const deep = segments[segments.length - 1] === '**';
  return { segments: deep ? segments.slice(0, -1) : segments, deep };
}

/**
 * `*` matches any characters except `/` (segments hold none). Linear backtracking to
 * the last `*` rather than a RegExp: a pattern like `*a*a*a…b` cannot make it slow.
 */
export function globMatches(glob: string, text: string): boolean {
  let [g, t, star, mark] = [0, 0, -1, 0];
  while (t < text.length) {
    if (glob[g] === '*') [star, mark] = [g++, t];
    else if (g < glob.length && glob[g] === text[t]) [g, t] = [g + 1, t + 1];
    else if (star >= 0) [g, t] = [star + 1, ++mark];
    else return false;
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}

/** Segment lists of p fit q: every sequence p stands for, q does too. */
function fits(p: { segments: string[]; deep: boolean }, q: Pattern): boolean {
  const [m, n] = [p.segments.length, q.segments.length];
  if (q.deep ? !(m > n || (m === n && p.deep)) : p.deep || m !== n) return false;
  return q.segments.every((glob, i) => globMatches(glob, p.segments[i]!));
}

/** Does the pattern cover the reference's repository? */
export function matchesPattern(pattern: string, reference: string): boolean {
  return fits({ segments: canonicalRepository(reference).split('/'), deep: false }, parse(pattern));
}

/** Is the reference's repository under any of the patterns? */
export const matchesAny = (patterns: readonly string[], reference: string) => patterns.some((p) => matchesPattern(p, reference));

/**
 * Does `outer` cover every repository `inner` does? Sound (never yes wrongly) but not
 * complete: inner's `*` is compared as a character that only outer's `*` matches.
 * Keeps an admin key of a tenant from minting a key wider than its own.
 */
export function patternCovers(outer: string, inner: string): boolean {
  return fits(parse(inner), parse(outer));
}
