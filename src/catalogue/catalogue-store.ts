import type { Redis } from 'ioredis';
import { formatImageReference, parseImageReference } from '../oci/references.js';
import type { CatalogueUpdate, ImageRecord, LatestScan, SbomRef, Sighting, TagBuild } from './catalogue-record.js';
import { MERGE_SCRIPT, TAG_BUILD_SCRIPT } from './merge-script.js';

/**
 * Redis layout (durable across restarts only as far as Redis persists: AOF is the
 * deployment's job, as for job records):
 *   stv:image:<tenant>:<digest>  hash, one per (tenant, digest): the record's fields
 *   stv:images:t:<tenant>        sorted set of the tenant's digests, score = last_seen (ms)
 *   stv:tag-build:<tenant>:<ref> hash {digest, build_job, at}: the tenant's last build of the
 *                                tag registry/repository:tag (a build's `diff` is against it)
 * Tenants cannot hold a colon; the digest (or tag reference) is the key's last part.
 */
const keys = {
  record: (tenant: string, digest: string) => `stv:image:${tenant}:${digest}`,
  index: (tenant: string) => `stv:images:t:${tenant}`,
  tagBuild: (tenant: string, reference: string) => `stv:tag-build:${tenant}:${reference}`,
};

/** At most this many tags (and repositories) per digest: the least recently seen goes first. */
export const MAX_REFERENCES = 200;
export const MAX_REPOSITORIES = 50;
/** Index entries read per Redis round trip while listing. */
const BATCH = 100;
/** Records one listing request may examine: past it, the answer carries a cursor to continue. */
export const MAX_EXAMINED = 1000;

export interface ListQuery {
  tenant: string;
  limit: number;
  cursor?: string;
  /** Applied to each record in turn (catalogue-filter.ts). */
  matches: (record: ImageRecord) => boolean;
}

export class InvalidCatalogueCursorError extends Error {}

/**
 * The image catalogue in Redis. Writes are one Lua script per update (catalogue
 * merge-script.ts): several jobs finishing at once for one digest merge instead of
 * overwriting each other. Retention: each write sets the record's TTL to the retention
 * and drops index entries past it; reads skip records last seen before it and prune
 * index entries whose record has expired.
 */
export class CatalogueStore {
  private readonly retentionMs: number;

  constructor(
    private readonly redis: Redis,
    retentionDays: number,
    private readonly clock: () => number = Date.now,
  ) {
    this.retentionMs = retentionDays * 86_400_000;
  }

  async apply(update: CatalogueUpdate): Promise<void> {
    const nx: [string, string][] = [
      ['digest', update.digest],
      ['repository', update.repository],
    ];
    const image = update.image ?? {};
    if (image.platforms?.length) nx.push(['platforms', JSON.stringify(image.platforms)]);
    if (image.size_bytes !== undefined) nx.push(['size_bytes', String(image.size_bytes)]);
    if (image.created) nx.push(['created', image.created]);
    // Set when newer than what is there (the `<field>@` time): a late write of an older job cannot win.
    const newer: [string, string, string][] = [];
    if (update.build_job) newer.push(['build_job', update.at, update.build_job]);
    if (update.scan) newer.push(['scan', update.scan.scanned_at, JSON.stringify(update.scan)]);
    if (update.sbom) newer.push(['sbom', update.at, JSON.stringify(update.sbom)]);
    for (const s of update.signatures ?? []) newer.push([`sig:${s.key}`, s.at, JSON.stringify(s)]);
    for (const a of update.attestations ?? []) newer.push([`att:${a.type}`, a.at, JSON.stringify(a)]);
    const seen: [string, string, number][] = [
      ...update.repositories.map((r): [string, string, number] => ['repo:', r, MAX_REPOSITORIES]),
      ...update.references.map((r): [string, string, number] => ['ref:', r, MAX_REFERENCES]),
    ];
    const atMs = Date.parse(update.at);
    const ttlMs = String(Math.max(1000, Math.round(atMs + this.retentionMs - this.clock())));
    await this.redis.eval(
      MERGE_SCRIPT,
      2,
      keys.record(update.tenant, update.digest),
      keys.index(update.tenant),
      JSON.stringify({
        nx,
        newer,
        seen,
        at: update.at,
        score: String(atMs),
        member: update.digest,
        ttl_ms: ttlMs,
        cutoff_ms: String(this.cutoff()),
      }),
    );
    // A build names the tags it pushed: each now points at this digest (kept as long as the record).
    if (update.build_job && update.references.length) {
      const tagKeys = update.references.map((r) => keys.tagBuild(update.tenant, r));
      await this.redis.eval(
        TAG_BUILD_SCRIPT,
        tagKeys.length,
        ...tagKeys,
        JSON.stringify({ at: update.at, digest: update.digest, build_job: update.build_job, ttl_ms: ttlMs }),
      );
    }
  }

  /**
   * The tenant's last build of a tag (any spelling of registry/repository:tag; a digest in
   * it is ignored), or undefined: never built by this tenant, past retention, or not a tag.
   */
  async lastBuild(tenant: string, tag: string): Promise<TagBuild | undefined> {
    const ref = safeParse(tag);
    if (!ref?.tag) return undefined;
    const reference = formatImageReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag });
    const raw = await this.redis.hgetall(keys.tagBuild(tenant, reference));
    if (!raw.digest || !raw.build_job || !raw.at || Date.parse(raw.at) < this.cutoff()) return undefined;
    return { reference, digest: raw.digest, build_job: raw.build_job, at: raw.at };
  }

  /** The record, or undefined when the tenant has none for this digest (or it is past retention). */
  async get(tenant: string, digest: string): Promise<ImageRecord | undefined> {
    const raw = await this.redis.hgetall(keys.record(tenant, digest));
    const record = decode(raw);
    return record && Date.parse(record.last_seen) >= this.cutoff() ? record : undefined;
  }

  /**
   * Every tenant's records that have a scan, tenant by tenant, BATCH index entries per
   * round trip (the rescan scheduler walks them; a SCAN, never a KEYS, over the indexes).
   */
  async *scannedRecords(): AsyncGenerator<{ tenant: string; record: ImageRecord }> {
    const prefix = keys.index('');
    let scan = '0';
    do {
      const [next, found] = await this.redis.scan(scan, 'MATCH', `${prefix}*`, 'COUNT', BATCH);
      scan = next;
      for (const index of found) {
        const tenant = index.slice(prefix.length);
        for (let start = 0; ; start += BATCH) {
          const digests = await this.redis.zrange(index, String(start), String(start + BATCH - 1));
          for (const digest of digests) {
            const record = await this.get(tenant, digest);
            if (record?.latest_scan) yield { tenant, record };
          }
          if (digests.length < BATCH) break;
        }
      }
    } while (scan !== '0');
  }

  /**
   * Most recently seen first. Walks the index in batches of BATCH, at most MAX_EXAMINED
   * records per call: a filter that matches little answers with fewer items and a
   * cursor rather than reading a whole large catalogue in one request.
   */
  async list(query: ListQuery): Promise<{ items: ImageRecord[]; next_cursor: string | null }> {
    const items: ImageRecord[] = [];
    let cursor = query.cursor ? decodeCursor(query.cursor) : undefined;
    const cutoff = this.cutoff();
    const index = keys.index(query.tenant);
    for (let examined = 0; examined < MAX_EXAMINED;) {
      const max = cursor ? String(cursor.score) : '+inf';
      const raw = await this.redis.zrevrangebyscore(index, max, String(cutoff), 'WITHSCORES', 'LIMIT', 0, BATCH);
      let entries: { digest: string; score: number }[] = [];
      for (let i = 0; i < raw.length; i += 2) entries.push({ digest: raw[i]!, score: Number(raw[i + 1]) });
      const full = raw.length === BATCH * 2;
      // Same-score members come in reverse lexical order: skip those the cursor has passed.
      if (cursor) entries = entries.filter((e) => e.score < cursor!.score || e.digest < cursor!.digest);
      const capped = entries.length > MAX_EXAMINED - examined;
      if (capped) entries = entries.slice(0, MAX_EXAMINED - examined);
      if (!entries.length) return { items, next_cursor: null };
      const pipeline = this.redis.pipeline();
      for (const e of entries) pipeline.hgetall(keys.record(query.tenant, e.digest));
      const rows = (await pipeline.exec()) ?? [];
      const gone: string[] = [];
      for (const [i, entry] of entries.entries()) {
        cursor = entry;
        examined++;
        const [err, value] = rows[i] ?? [null, null];
        if (err) throw err;
        const record = decode(value as Record<string, string>);
        if (!record) {
          gone.push(entry.digest); // its TTL ran out
          continue;
        }
        if (!query.matches(record)) continue;
        items.push(record);
        if (items.length === query.limit) {
          if (gone.length) await this.redis.zrem(index, ...gone);
          return { items, next_cursor: encodeCursor(entry) };
        }
      }
      if (gone.length) await this.redis.zrem(index, ...gone);
      if (!full && !capped) return { items, next_cursor: null };
    }
    return { items, next_cursor: cursor ? encodeCursor(cursor) : null };
  }

  private cutoff(): number {
    return this.clock() - this.retentionMs;
  }
}

/** A record from its hash; undefined for a missing (or half-written) one. */
export function decode(raw: Record<string, string> | null | undefined): ImageRecord | undefined {
  if (!raw?.digest || !raw.last_seen || !raw.first_seen) return undefined;
  const references: Sighting[] = [];
  const repositories: { name: string; last: string }[] = [];
  const signatures: ImageRecord['signatures'] = [];
  const attestations: ImageRecord['attestations'] = [];
  for (const [field, value] of Object.entries(raw)) {
    if (field.endsWith('@')) continue;
    if (field.startsWith('ref:')) {
      const [first_seen, last_seen] = value.split('|') as [string, string];
      const reference = field.slice(4);
      const ref = safeParse(reference);
      if (ref?.tag) references.push({ reference, repository: `${ref.registry}/${ref.repository}`, tag: ref.tag, first_seen, last_seen });
    } else if (field.startsWith('repo:')) repositories.push({ name: field.slice(5), last: value.split('|')[1] ?? '' });
    else if (field.startsWith('sig:')) signatures.push(JSON.parse(value) as ImageRecord['signatures'][number]);
    else if (field.startsWith('att:')) attestations.push(JSON.parse(value) as ImageRecord['attestations'][number]);
  }
  // The latest SBOM stored (a later scan's replaces the build's); attached: the image carries an SBOM attestation.
  const sbom = raw.sbom ? (JSON.parse(raw.sbom) as SbomRef) : undefined;
  const byLastSeen = (a: { last_seen: string }, b: { last_seen: string }) => b.last_seen.localeCompare(a.last_seen);
  references.sort((a, b) => byLastSeen(a, b) || a.reference.localeCompare(b.reference));
  signatures.sort((a, b) => a.key.localeCompare(b.key));
  attestations.sort((a, b) => a.type.localeCompare(b.type));
  return {
    digest: raw.digest,
    repository: raw.repository ?? '',
    repositories: repositories.map((r) => r.name).sort(),
    references,
    platforms: raw.platforms ? (JSON.parse(raw.platforms) as string[]) : [],
    size_bytes: raw.size_bytes ? Number(raw.size_bytes) : null,
    created: raw.created ?? null,
    build_job: raw.build_job ?? null,
    first_seen: raw.first_seen,
    last_seen: raw.last_seen,
    latest_scan: raw.scan ? (JSON.parse(raw.scan) as LatestScan) : null,
    signatures,
    attestations,
    sbom: sbom ? { ...sbom, attached: sbom.attached || attestations.some((a) => a.type === 'cyclonedx') } : null,
  };
}

function safeParse(reference: string) {
  try {
    return parseImageReference(reference);
  } catch {
    return undefined;
  }
}

function encodeCursor(c: { score: number; digest: string }): string {
  return Buffer.from(`${c.score}|${c.digest}`).toString('base64url');
}

function decodeCursor(cursor: string): { score: number; digest: string } {
  const m = /^(\d{1,16})\|(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw new InvalidCatalogueCursorError('not a cursor this server issued');
  return { score: Number(m[1]), digest: m[2]! };
}
