import { createHash } from 'node:crypto';
import { DIGEST_PATTERN, isRepositoryGlob, isVulnerabilityId, type ExceptionScope } from './exception-scope.js';
import type { VulnerabilityException } from './exception-store.js';

/**
 * OpenVEX v0.2.0 (https://github.com/openvex/spec) in and out of exceptions.
 *
 * Mapping: an exception is the tenant's statement that a finding does not matter for the
 * images in its scope until it expires, so it is exported as `status: not_affected` with
 * its reason as `impact_statement` (OpenVEX asks for a justification or an impact
 * statement; an exception has a free-text reason, not one of the five justifications) and
 * id, owner and expiry in `status_notes`. Products are stevedore URNs that carry the scope
 * exactly, so an export imports back to the same scopes:
 *   digest scope      {"@id": "urn:stevedore:digest:sha256:<hex>", "hashes": {"sha-256": "<hex>"}}
 *   repository scope  {"@id": "urn:stevedore:repository:<glob>"}
 * A purl cannot say "every digest of repositories matching team/*", and Trivy matches
 * products by purl name and version, so exported documents are for exchange; what Trivy
 * gets on a scan is a document made for that one image (`scanVexDocument`).
 *
 * On import, `not_affected` and `fixed` statements become exceptions (the others say the
 * image is affected or may be: nothing to except); products may be the URNs above or
 * `pkg:oci/<name>@sha256%3A<hex>` purls (a digest scope).
 */
export const OPENVEX_CONTEXT = 'https://openvex.dev/ns/v0.2.0';
const DIGEST_URN = 'urn:stevedore:digest:';
const REPOSITORY_URN = 'urn:stevedore:repository:';

export interface OpenVexStatement {
  vulnerability: { name: string };
  products: { '@id': string; hashes?: Record<string, string> }[];
  status: 'not_affected' | 'affected' | 'fixed' | 'under_investigation';
  impact_statement?: string;
  justification?: string;
  status_notes?: string;
  timestamp?: string;
}

export interface OpenVexDocument {
  '@context': string;
  '@id': string;
  author: string;
  timestamp: string;
  version: number;
  statements: OpenVexStatement[];
}

const productOf = (scope: ExceptionScope): OpenVexStatement['products'][number] =>
  'digest' in scope
    ? { '@id': `${DIGEST_URN}${scope.digest}`, hashes: { 'sha-256': scope.digest.slice('sha256:'.length) } }
    : { '@id': `${REPOSITORY_URN}${scope.repository}` };

function document(author: string, statements: OpenVexStatement[], now: Date): OpenVexDocument {
  // Same statements, same id: a consumer can tell a re-export from a change.
  const id = createHash('sha256').update(JSON.stringify(statements)).digest('hex');
  return { '@context': OPENVEX_CONTEXT, '@id': `urn:stevedore:vex:${id}`, author, timestamp: now.toISOString(), version: 1, statements };
}

/** The tenant's exceptions as one document, in the order given. */
export function exportOpenVex(tenant: string, exceptions: VulnerabilityException[], now = new Date()): OpenVexDocument {
  return document(
    `stevedore tenant ${tenant}`,
    exceptions.map((e) => ({
      vulnerability: { name: e.vulnerability_id },
      products: [productOf(e.scope)],
      status: 'not_affected',
      impact_statement: e.reason,
      status_notes: `stevedore exception ${e.id}; owner ${e.owner}; expires ${e.expires}`,
      timestamp: e.created_at,
    })),
    now,
  );
}

/**
 * The document Trivy gets with `--vex` for one image: each matching exception as a
 * `not_affected` statement whose product is the image's own purl, the way Trivy names the
 * root of a container image (pkg/purl parseOCI: type oci, the repository's last segment
 * lowercased, the manifest digest as version). go-vex matches a product purl without
 * qualifiers against the root's `?arch=…&repository_url=…` (PurlMatches: the statement's
 * qualifiers must be a subset), and Trivy walks from each vulnerable package up to the
 * root, so one statement on the image covers every package in it.
 *
 * `image.packages`: for a rescan from the stored SBOM (`trivy sbom`), the purls of the
 * image's packages (`sbomPurls` of that SBOM). There the root has no purl — Trivy rebuilds
 * the tree from a report whose artifact is the SBOM file (pkg/sbom/io rootComponent) — so
 * the image's statement matches nothing; naming each package as a product too lets Trivy
 * match at the package itself (pkg/vex reachRoot tries the leaf first). The same document
 * then sets the same findings aside, with the same status, in an image scan and in an
 * SBOM scan (test/integration/sbom-rescan-equivalence.test.ts).
 */
export function scanVexDocument(
  image: { repository: string; manifestDigest: string; packages?: string[] },
  exceptions: VulnerabilityException[],
  now = new Date(),
): OpenVexDocument {
  const name = image.repository.split('/').pop()!.toLowerCase();
  const purl = `pkg:oci/${encodeURIComponent(name)}@${encodeURIComponent(image.manifestDigest)}`;
  const products = [purl, ...new Set(image.packages ?? [])].map((id) => ({ '@id': id }));
  return document(
    'stevedore',
    exceptions.map((e) => ({
      vulnerability: { name: e.vulnerability_id },
      products,
      status: 'not_affected',
      impact_statement: e.reason,
      status_notes: `stevedore exception ${e.id}`,
    })),
    now,
  );
}

/** The package purls a CycloneDX SBOM lists (its components, nested ones too), for scanVexDocument. */
export function sbomPurls(sbom: unknown): string[] {
  const out = new Set<string>();
  const walk = (components: unknown) => {
    if (!Array.isArray(components)) return;
    for (const c of components as { purl?: unknown; components?: unknown }[]) {
      if (typeof c?.purl === 'string' && c.purl.startsWith('pkg:')) out.add(c.purl);
      walk(c?.components);
    }
  };
  walk((sbom as { components?: unknown } | null)?.components);
  return [...out];
}

/** What an imported statement asks for, before the caller's expiry is added. */
export interface ImportedException {
  vulnerability_id: string;
  scope: ExceptionScope;
  reason: string;
}

export class VexDocumentError extends Error {
  constructor(readonly fields: { path: string; message: string }[]) {
    super(fields.map((f) => `${f.path}: ${f.message}`).join('; '));
  }
}

const MAX_STATEMENTS = 1000;
const MAX_TEXT = 1024;

function scopeOfProduct(product: unknown): ExceptionScope | string {
  if (!product || typeof product !== 'object') return 'must be an object';
  const id = (product as { '@id'?: unknown })['@id'];
  if (typeof id !== 'string' || id.length > 512) return 'needs an @id (a string)';
  if (id.startsWith(DIGEST_URN)) {
    const digest = id.slice(DIGEST_URN.length);
    return DIGEST_PATTERN.test(digest) ? { digest } : 'has an invalid digest';
  }
  if (id.startsWith(REPOSITORY_URN)) {
    const repository = id.slice(REPOSITORY_URN.length);
    return isRepositoryGlob(repository) ? { repository } : 'has an invalid repository';
  }
  const oci = /^pkg:oci\/[a-z0-9._-]+@sha256(?::|%3A)([a-f0-9]{64})(?:\?.*)?$/i.exec(id);
  if (oci) return { digest: `sha256:${oci[1]!.toLowerCase()}` };
  return 'is not a product stevedore can scope: urn:stevedore:digest:…, urn:stevedore:repository:… or pkg:oci/<name>@sha256%3A<hex>';
}

/**
 * The exceptions an OpenVEX document asks for (one per statement and product), or
 * VexDocumentError naming every problem. `skipped` counts statements whose status
 * creates nothing (affected, under_investigation).
 */
export function importOpenVex(doc: unknown): { author: string; exceptions: ImportedException[]; skipped: number } {
  const problems: { path: string; message: string }[] = [];
  const d = (doc && typeof doc === 'object' ? doc : {}) as Record<string, unknown>;
  if (typeof d['@context'] !== 'string' || !d['@context'].startsWith('https://openvex.dev/ns'))
    problems.push({ path: '@context', message: `must be an OpenVEX context such as ${OPENVEX_CONTEXT}` });
  const author = typeof d.author === 'string' ? d.author.trim() : '';
  if (!author || author.length > 256 || /[\x00-\x1f\x7f]/.test(author))
    problems.push({ path: 'author', message: 'must be one line of at most 256 characters' });
  const statements = Array.isArray(d.statements) ? (d.statements as unknown[]) : undefined;
  if (!statements?.length || statements.length > MAX_STATEMENTS)
    problems.push({ path: 'statements', message: `must be an array of 1-${MAX_STATEMENTS} statements` });
  const exceptions: ImportedException[] = [];
  let skipped = 0;
  for (const [i, raw] of (problems.length ? [] : statements!).entries()) {
    const s = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
    const at = (field: string) => `statements.${i}.${field}`;
    const vuln = (s.vulnerability ?? {}) as Record<string, unknown>;
    const name = typeof vuln.name === 'string' ? vuln.name : undefined;
    if (!name || !isVulnerabilityId(name))
      problems.push({ path: at('vulnerability.name'), message: 'must be an advisory id such as CVE-2024-1234' });
    if (!['not_affected', 'affected', 'fixed', 'under_investigation'].includes(s.status as string))
      problems.push({ path: at('status'), message: 'must be not_affected, affected, fixed or under_investigation' });
    const products = Array.isArray(s.products) ? (s.products as unknown[]) : [];
    if (!products.length || products.length > 100) problems.push({ path: at('products'), message: 'must list 1-100 products' });
    const texts = ['impact_statement', 'justification', 'status_notes'].map((f) => s[f]);
    if (texts.some((t) => t !== undefined && (typeof t !== 'string' || t.length > MAX_TEXT)))
      problems.push({ path: at('impact_statement'), message: `texts must be strings of at most ${MAX_TEXT} characters` });
    const scopes = products.map(scopeOfProduct);
    scopes.forEach((sc, j) => typeof sc === 'string' && problems.push({ path: at(`products.${j}`), message: sc }));
    if (s.status !== 'not_affected' && s.status !== 'fixed') {
      skipped++;
      continue;
    }
    const text = texts.find((t) => typeof t === 'string' && t.trim()) as string | undefined;
    // Control characters other than line breaks and tabs are dropped (reasons reach webhooks and logs).
    const reason = (text ?? '').replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trim() || `OpenVEX statement: ${s.status as string}`;
    for (const scope of scopes) if (typeof scope !== 'string' && name) exceptions.push({ vulnerability_id: name, scope, reason });
  }
  if (problems.length) throw new VexDocumentError(problems.slice(0, 100));
  return { author, exceptions, skipped };
}
