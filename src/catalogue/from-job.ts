import { assertDigest, formatImageReference, parseImageReference } from '../oci/references.js';
import type { JobRecord } from '../jobs/job-types.js';
import type { CatalogueUpdate, LatestScan, SbomRef, ScanCounts } from './catalogue-record.js';

/**
 * What a finished job tells the catalogue, from its request and result alone (pure: no
 * I/O, no clock but the job's finish time). The results are read as the stored JSON
 * they are, field by field with type checks, not through the workers' types: a result
 * written by an older or newer worker yields fewer facts, never a throw.
 *
 * - build (pushed): the built digest with its tags, image facts, the pipeline's scan,
 *   signature, attestations, SBOM and `push_to` copies. A build stopped by its gate
 *   (POLICY_FAILED) was already pushed: its tags and failed verdict are recorded.
 * - scan: the scanned digest (an index's top digest), its summary, verdict and reports;
 *   its SBOM artifacts (a scan stores one per platform).
 * - sign: the signed digest and the key's name.
 * - push: each copied digest with the destinations' tags (also the copies that
 *   succeeded in a push that failed for another destination).
 * Everything else (verify, inspect, optimize, other failures) records nothing.
 */
export function catalogueUpdates(
  job: Pick<JobRecord, 'id' | 'tenant' | 'action' | 'state' | 'request' | 'result' | 'error' | 'finished_at'>,
  now = new Date(),
): CatalogueUpdate[] {
  const at = isTime(job.finished_at) ? new Date(job.finished_at).toISOString() : now.toISOString();
  const request = obj(job.request);
  if (job.state === 'succeeded') {
    const result = obj(job.result);
    switch (job.action) {
      case 'build':
        return fromBuild(job, result, at);
      case 'scan':
        return fromScan(job, request, result, at);
      case 'sign':
        return fromSign(job, request, result, at);
      case 'push':
        return fromPushed(job, request, arr(result.pushed), at);
      default:
        return [];
    }
  }
  if (job.state === 'failed') {
    const error = obj(job.error);
    const details = obj(error.details);
    if (job.action === 'build' && error.code === 'POLICY_FAILED') return fromGatedBuild(job, request, details, at);
    if (job.action === 'push' && error.code === 'PUSH_FAILED') return fromPushed(job, request, arr(details.pushed), at);
  }
  return [];
}

type Job = Pick<JobRecord, 'id' | 'tenant'>;
type Json = Record<string, unknown>;

function fromBuild(job: Job, result: Json, at: string): CatalogueUpdate[] {
  const build = obj(result.build);
  const digest = digestOf(build.digest);
  const tags = strings(result.tags).filter(isReference);
  if (!digest || !tags.length) return []; // not pushed: not an image anywhere
  const update = base(job, digest, at, tags);
  update.image = imageFacts(obj(result.image_info), digest);
  update.build_job = job.id;
  const scan = scanOf(job, result, at, platformsOf(obj(result.image_info)));
  if (scan) update.scan = scan;
  const signed = obj(result.signed);
  if (typeof signed.key === 'string' && signed.digest === digest) update.signatures = [{ key: signed.key, job_id: job.id, at }];
  const types = strings(result.attestations);
  if (types.length) update.attestations = types.map((type) => ({ type, job_id: job.id, at }));
  const sboms = arr(result.sbom)
    .map(obj)
    .filter((s) => typeof s.platform === 'string' && typeof s.digest === 'string' && typeof s.artifact === 'string')
    .map((s) => ({ platform: s.platform as string, digest: s.digest as string, artifact: s.artifact as string }));
  if (sboms.length) update.sbom = sbomRef(job, sboms, types.includes('cyclonedx'));
  return [update, ...fromPushed(job, {}, arr(result.pushed), at)];
}

/** The gate stopped the pipeline after the push: the tags point at the digest, the verdict is failed. */
function fromGatedBuild(job: Job, request: Json, details: Json, at: string): CatalogueUpdate[] {
  const digest = digestOf(details.digest);
  if (!digest) return [];
  const tags = requestTags(request);
  if (!tags.length) return [];
  const update = base(job, digest, at, tags);
  update.build_job = job.id;
  const scan = scanOf(job, details, at, strings(details.platforms));
  if (scan) update.scan = scan;
  return [update];
}

function fromScan(job: Job, request: Json, result: Json, at: string): CatalogueUpdate[] {
  const info = obj(result.image_info);
  const digest = digestOf(info.digest);
  const image = typeof request.image === 'string' && isReference(request.image) ? request.image : undefined;
  if (!digest || !image) return [];
  const update = base(job, digest, at, [image]);
  update.image = imageFacts(info, digest);
  const platforms = arr(result.platforms).map(obj);
  const scan = scanOf(
    job,
    result,
    at,
    platforms.map((p) => p.platform).filter((p): p is string => typeof p === 'string'),
  );
  if (scan) update.scan = scan;
  const sboms = platforms
    .map((p) => ({ platform: p.platform, digest: p.manifest_digest, artifact: obj(p.artifacts).sbom }))
    .filter((s): s is SbomRef['platforms'][number] => [s.platform, s.digest, s.artifact].every((v) => typeof v === 'string'));
  if (sboms.length) update.sbom = sbomRef(job, sboms, false);
  return [update];
}

function fromSign(job: Job, request: Json, result: Json, at: string): CatalogueUpdate[] {
  const signed = obj(result.signed);
  const digest = digestOf(signed.digest);
  const pinned = typeof signed.reference === 'string' && isReference(signed.reference) ? signed.reference : undefined;
  if (!digest || !pinned || typeof signed.key !== 'string') return [];
  const image = typeof request.image === 'string' && isReference(request.image) ? request.image : pinned;
  const update = base(job, digest, at, [image, pinned]);
  const platforms = arr(signed.platforms)
    .map((p) => obj(p).platform)
    .filter((p): p is string => typeof p === 'string');
  if (platforms.length) update.image = { platforms };
  update.signatures = [{ key: signed.key, job_id: job.id, at }];
  return [update];
}

/** Copies: each destination's digest gets the destination's tag (and the source's, same content). */
function fromPushed(job: Job, request: Json, pushed: unknown[], at: string): CatalogueUpdate[] {
  const byDigest = new Map<string, string[]>();
  for (const p of pushed.map(obj)) {
    const digest = digestOf(p.digest);
    if (!digest || typeof p.reference !== 'string' || !isReference(p.reference)) continue;
    byDigest.set(digest, [...(byDigest.get(digest) ?? []), p.reference]);
  }
  const source = typeof request.image === 'string' && isReference(request.image) ? [request.image] : [];
  return [...byDigest].map(([digest, references]) => base(job, digest, at, [...source, ...references]));
}

/** An update naming the digest's repositories and tags from references (tagged or pinned). */
function base(job: Job, digest: string, at: string, references: string[]): CatalogueUpdate {
  const parsed = references.map((r) => parseImageReference(r));
  const repositories = [...new Set(parsed.map((p) => `${p.registry}/${p.repository}`))];
  return {
    tenant: job.tenant,
    digest,
    at,
    repository: repositories[0]!,
    repositories,
    references: [
      ...new Set(
        parsed.filter((p) => p.tag).map((p) => formatImageReference({ registry: p.registry, repository: p.repository, tag: p.tag })),
      ),
    ],
  };
}

function scanOf(job: Job, result: Json, at: string, platforms: string[]): LatestScan | undefined {
  const summary = countsOf(result.summary);
  const policy = obj(result.policy);
  if (!summary || typeof policy.passed !== 'boolean') return undefined;
  return {
    job_id: job.id,
    scanned_at: at,
    db_updated_at: typeof obj(result.scanner).db_updated_at === 'string' ? (obj(result.scanner).db_updated_at as string) : null,
    summary,
    policy: { passed: policy.passed, violations: arr(policy.violations).length },
    platforms,
    reports: strings(result.artifacts).filter((a) => /^(trivy-report|report\.sarif)(\.[a-z0-9_-]+)?\.json$/.test(a)),
  };
}

function sbomRef(job: Job, platforms: SbomRef['platforms'], attached: boolean): SbomRef {
  return { job_id: job.id, artifact: platforms[0]!.artifact, platforms, attached };
}

/** Facts of the digest as its inspect showed them (only when it is this digest's). */
function imageFacts(info: Json, digest: string): CatalogueUpdate['image'] {
  if (info.digest !== digest) return undefined;
  const platforms = platformsOf(info);
  return {
    ...(platforms.length ? { platforms } : {}),
    ...(typeof info.size_bytes === 'number' && Number.isFinite(info.size_bytes) ? { size_bytes: info.size_bytes } : {}),
    ...(isTime(info.created) ? { created: info.created } : {}),
  };
}

const platformsOf = (info: Json) => strings(info.platforms);

function countsOf(value: unknown): ScanCounts | undefined {
  const s = obj(value);
  const keys = ['critical', 'high', 'medium', 'low', 'unknown', 'fixable'] as const;
  if (!keys.slice(0, 5).every((k) => typeof s[k] === 'number')) return undefined;
  return Object.fromEntries(keys.map((k) => [k, typeof s[k] === 'number' ? s[k] : 0])) as unknown as ScanCounts;
}

/** A build request's tags: `tags`, or the seed's registry + image. */
function requestTags(request: Json): string[] {
  const tags = strings(request.tags);
  if (tags.length) return tags.filter(isReference);
  const joined = typeof request.registry === 'string' && typeof request.image === 'string' ? `${request.registry}/${request.image}` : '';
  return joined && isReference(joined) ? [joined] : [];
}

function digestOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  try {
    assertDigest(value);
    return value;
  } catch {
    return undefined;
  }
}

function isReference(value: string): boolean {
  try {
    parseImageReference(value);
    return true;
  } catch {
    return false;
  }
}

const isTime = (v: unknown): v is string => typeof v === 'string' && v.length <= 64 && Number.isFinite(Date.parse(v));
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const strings = (v: unknown): string[] => arr(v).filter((s): s is string => typeof s === 'string');
