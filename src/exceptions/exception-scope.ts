import { globMatches } from '../auth/repository-patterns.js';
/**
 * What an exception covers, and how a scanned image is matched against it. Pure: no I/O.
 *
 * A scope is either a repository path glob (`team/app`, `team/*`, `team/**`) or one image
 * digest. The repository is the path of the reference, without its registry: `team/app`
 * covers `registry.example:5000/team/app` and `localhost:5000/team/app` alike. Globs are
 * matched segment by segment by hand (no RegExp built from a caller's text): `*` stands
 * for any characters within one path segment, `**` (only as the last segment) for one
 * or more segments below.
 */
export type ExceptionScope = { repository: string } | { digest: string };

/** What a scan knows of the image whose findings are judged. */
export interface ScannedImage {
  /** The reference's repository path (`team/app`). */
  repository: string;
  /** The digests the image answers to: the index's and the platform manifest's. */
  digests: string[];
}

export const MAX_REPOSITORY_GLOB_LENGTH = 255;
export const DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;
const SEGMENT = /^[a-z0-9._*-]+$/;
export const REPOSITORY_GLOB_RULE =
  'must be a repository path such as team/app, team/* or team/** ' +
  '(lowercase letters, digits, . _ - and * between slashes; no registry, tag or digest)';

/**
 * Advisory ids Trivy reports: CVE, GHSA and the distributions' and ecosystems' own
 * (DLA-3482-1, RUSTSEC-2023-0001, GO-2022-0001, PYSEC-2021-1, ALAS2-2023-1, RHSA-2023:1234,
 * TEMP-0841856-B18BAF, openSUSE-SU-2024:1234-1). CVE and GHSA must have their exact shape.
 */
const ADVISORY_ID = /^[A-Za-z][A-Za-z0-9]{1,15}(?:[-_:.][A-Za-z0-9]{1,32}){1,6}$/;
const CVE_ID = /^CVE-\d{4}-\d{4,19}$/;
const GHSA_ID = /^GHSA(?:-[23456789cfghjmpqrvwx]{4}){3}$/;
export const VULNERABILITY_ID_RULE = 'must be an advisory id such as CVE-2024-1234, GHSA-xxxx-xxxx-xxxx or DLA-3482-1';

export function isVulnerabilityId(id: string): boolean {
  if (id.length > 96 || !ADVISORY_ID.test(id)) return false;
  if (/^cve-/i.test(id)) return CVE_ID.test(id);
  if (/^ghsa-/i.test(id)) return GHSA_ID.test(id);
  return true;
}

/** Whether `glob` is a repository path glob this module accepts. */
export function isRepositoryGlob(glob: string): boolean {
  if (!glob || glob.length > MAX_REPOSITORY_GLOB_LENGTH) return false;
  const segments = glob.split('/');
  return segments.every((s, i) => {
    if (!SEGMENT.test(s)) return false;
    // `**` alone, and only at the end (anything below); never inside a segment.
    if (s.includes('**')) return s === '**' && i === segments.length - 1 && i > 0;
    return true;
  });
}

/** Does the repository glob cover `repository` (a path such as `team/app`)? */
export function repositoryMatches(glob: string, repository: string): boolean {
  const globs = glob.split('/');
  const parts = repository.split('/');
  const deep = globs[globs.length - 1] === '**';
  const fixed = deep ? globs.slice(0, -1) : globs;
  if (deep ? parts.length <= fixed.length : parts.length !== fixed.length) return false;
  return fixed.every((g, i) => globMatches(g, parts[i]!));
}

export function scopeMatches(scope: ExceptionScope, image: ScannedImage): boolean {
  if ('digest' in scope) return image.digests.includes(scope.digest);
  return repositoryMatches(scope.repository, image.repository);
}
