import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluatePolicy, type PolicyException } from '../../src/engines/trivy/scan-policy.js';
import { normalizeReport, type Vulnerability } from '../../src/engines/trivy/trivy-report.js';
import { AppError } from '../../src/errors/app-error.js';
import { checkExpiry, createExceptionSchema } from '../../src/exceptions/exception-input.js';
import { isRepositoryGlob, isVulnerabilityId, repositoryMatches, scopeMatches } from '../../src/exceptions/exception-scope.js';
import type { VulnerabilityException } from '../../src/exceptions/exception-store.js';
import { exportOpenVex, importOpenVex, scanVexDocument, VexDocumentError } from '../../src/exceptions/openvex.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const NOW = new Date('2026-06-01T00:00:00Z');
const valid = {
  vulnerability_id: 'CVE-2021-23337',
  scope: { repository: 'team/*' },
  reason: 'not reachable',
  owner: 'alice',
  expires: '2026-07-01',
};

const fieldsOf = (body: unknown) => {
  const r = createExceptionSchema.safeParse(body);
  return r.success ? [] : r.error.issues.map((i) => i.path.join('.'));
};

describe('exception input', () => {
  it('accepts advisory ids Trivy reports, and only the exact shapes of CVE and GHSA ids', () => {
    for (const id of [
      'CVE-2021-23337',
      'CVE-2024-1234567',
      'GHSA-35jh-r3h4-6jhm',
      'DLA-3482-1',
      'RUSTSEC-2023-0001',
      'GO-2022-0001',
      'RHSA-2023:1234',
      'TEMP-0841856-B18BAF',
      'openSUSE-SU-2024:1234-1',
      'PYSEC-2021-1',
    ])
      assert.ok(isVulnerabilityId(id), id);
    for (const id of [
      'CVE-21-1',
      'cve-2021-23337x',
      'GHSA-aaaa-bbbb-cccc',
      'CVE-2021-23337; rm -rf',
      '',
      'x',
      'CVE 2021 1',
      'A-'.repeat(40),
      '../etc',
    ])
      assert.ok(!isVulnerabilityId(id), id);
  });

  it('limits repository globs to repository characters and `*`, `**` only as the last segment', () => {
    for (const g of ['team/app', 'team/*', 'team/**', '*/app', 'team/app-*', 'a.b_c/d']) assert.ok(isRepositoryGlob(g), g);
    for (const g of [
      '',
      '/team',
      'team/',
      'Team/App',
      'team/(a|b)',
      'team/[ab]',
      'team/a+',
      'team/**/app',
      '**',
      'team/a**',
      'host:5000/app',
      'team/app:1',
      'team/app@sha256:x',
      'x'.repeat(256),
    ])
      assert.ok(!isRepositoryGlob(g), g);
  });

  it('validates the body: every field named, both scopes at once refused, bounded texts', () => {
    assert.deepEqual(fieldsOf(valid), []);
    assert.deepEqual(fieldsOf({ ...valid, scope: { digest: DIGEST } }), []);
    assert.ok(fieldsOf({ ...valid, scope: { repository: 'team/app', digest: DIGEST } }).includes('scope'));
    assert.deepEqual(fieldsOf({ ...valid, scope: { digest: 'sha256:abc' } }), ['scope.digest']);
    assert.deepEqual(fieldsOf({ ...valid, scope: { repository: 'team/(a|b)' } }), ['scope.repository']);
    assert.deepEqual(fieldsOf({ ...valid, scope: {} }), ['scope']);
    assert.deepEqual(createExceptionSchema.parse({ ...valid, scope: { digest: DIGEST } }).scope, { digest: DIGEST });
    assert.ok(fieldsOf({ ...valid, vulnerability_id: 'nope' }).includes('vulnerability_id'));
    assert.ok(fieldsOf({ ...valid, reason: '   ' }).includes('reason'));
    assert.ok(fieldsOf({ ...valid, reason: 'x'.repeat(1025) }).includes('reason'));
    assert.ok(fieldsOf({ ...valid, owner: 'a\nb' }).includes('owner'));
    assert.ok(fieldsOf({ ...valid, reason: 'a\u0000b' }).includes('reason'));
    const { expires: _e, ...noExpiry } = valid;
    assert.ok(fieldsOf(noExpiry).includes('expires'));
    assert.ok(fieldsOf({ ...valid, expires: 'next week' }).includes('expires'));
    assert.ok(fieldsOf({ ...valid, extra: 1 }).length, 'unknown fields are refused');
  });

  it('wants an expiry in the future and within the horizon', () => {
    assert.equal(checkExpiry('2026-07-01', 365, NOW), '2026-07-01T00:00:00.000Z');
    assert.throws(() => checkExpiry('2026-06-01T02:00:00+02:00', 365, NOW), AppError, 'now itself is not in the future');
    assert.throws(() => checkExpiry('2020-01-01', 365, NOW), /must be in the future/);
    assert.throws(() => checkExpiry('2027-06-02', 365, NOW), /at most 365 days ahead/);
    assert.equal(checkExpiry('2027-06-01', 365, NOW), '2027-06-01T00:00:00.000Z', 'exactly the horizon is allowed');
  });
});

describe('exception scopes', () => {
  it('match repository paths segment by segment, `*` within one segment, `**` below', () => {
    assert.ok(repositoryMatches('team/app', 'team/app'));
    assert.ok(!repositoryMatches('team/app', 'team/app2'));
    assert.ok(repositoryMatches('team/*', 'team/app'));
    assert.ok(!repositoryMatches('team/*', 'team/a/b'), '`*` never crosses a slash');
    assert.ok(!repositoryMatches('team/*', 'other/app'));
    assert.ok(repositoryMatches('team/**', 'team/a/b'));
    assert.ok(!repositoryMatches('team/**', 'team'));
    assert.ok(repositoryMatches('team/app-*', 'team/app-'));
    assert.ok(repositoryMatches('*/app', 'team/app'));
    // A pattern built to make a backtracking matcher slow answers at once.
    assert.ok(!repositoryMatches(`team/${'*a'.repeat(60)}b`, `team/${'a'.repeat(200)}`));
  });

  it('match a digest scope against the index or the platform manifest, whatever the repository', () => {
    const image = { repository: 'team/app', digests: [`sha256:${'1'.repeat(64)}`, DIGEST] };
    assert.ok(scopeMatches({ digest: DIGEST }, image));
    assert.ok(!scopeMatches({ digest: `sha256:${'2'.repeat(64)}` }, image));
    assert.ok(scopeMatches({ repository: 'team/*' }, image));
    assert.ok(!scopeMatches({ repository: 'other/*' }, image));
  });
});

const finding = (id: string, severity: Vulnerability['severity'] = 'HIGH'): Vulnerability => ({
  id,
  package: 'lodash',
  installed_version: '1',
  fixed_version: '2',
  severity,
  status: 'fixed',
  title: '',
  url: null,
  cvss_score: null,
  target: 't',
  class: 'lang-pkgs',
  layer_digest: null,
});
const exception = (over: Partial<PolicyException> = {}): PolicyException => ({
  exception_id: 'e1',
  vulnerability_id: 'CVE-2021-23337',
  reason: 'not reachable',
  owner: 'alice',
  expires: '2026-07-01T00:00:00.000Z',
  ...over,
});

describe('gates with exceptions', () => {
  it('apply an exception like an allow-list entry and name it in the verdict', () => {
    const findings = [finding('CVE-2021-23337'), finding('CVE-2020-8203', 'LOW')];
    assert.equal(evaluatePolicy(findings, { max_high: 0 }, NOW).passed, false);
    const v = evaluatePolicy(findings, { max_high: 0 }, NOW, [exception()]);
    assert.equal(v.passed, true);
    assert.deepEqual(v.allowed, [
      { id: 'CVE-2021-23337', reason: 'not reachable', expires: '2026-07-01T00:00:00.000Z', exception_id: 'e1', owner: 'alice' },
    ]);
  });

  it('stop applying an exception at its expiry, judged against now', () => {
    const findings = [finding('CVE-2021-23337')];
    const e = exception({ expires: NOW.toISOString() });
    assert.equal(evaluatePolicy(findings, { max_high: 0 }, new Date(NOW.getTime() - 1), [e]).passed, true);
    const after = evaluatePolicy(findings, { max_high: 0 }, NOW, [e]);
    assert.equal(after.passed, false);
    assert.deepEqual(after.allowed, []);
  });

  it("let the request's own allow-list entry win when both name a finding (one entry per id)", () => {
    const v = evaluatePolicy([finding('CVE-2021-23337')], { max_high: 0, allow: [{ id: 'CVE-2021-23337', reason: 'request' }] }, NOW, [
      exception(),
    ]);
    assert.deepEqual(v.allowed, [{ id: 'CVE-2021-23337', reason: 'request', expires: null }]);
  });

  it('keep a finding Trivy set aside by VEX, with the VEX status, so the gate sees it', () => {
    const vuln = {
      VulnerabilityID: 'CVE-2021-23337',
      PkgName: 'lodash',
      InstalledVersion: '4.17.20',
      FixedVersion: '4.17.21',
      Severity: 'HIGH',
    };
    const r = normalizeReport({
      Results: [
        {
          Target: 'Node.js',
          Class: 'lang-pkgs',
          ExperimentalModifiedFindings: [
            {
              Type: 'vulnerability',
              Status: 'not_affected',
              Statement: '',
              Source: '/srv/state/artifacts/x/vex.openvex.json',
              Finding: vuln,
            },
          ],
        },
      ],
    });
    assert.equal(r.vulnerabilities.length, 1);
    assert.equal(r.vulnerabilities[0]!.status, 'not_affected');
    assert.deepEqual(r.vulnerabilities[0]!.vex, { status: 'not_affected', statement: '', source: 'vex.openvex.json' });
    assert.equal(r.summary.high, 1);
    assert.equal(evaluatePolicy(r.vulnerabilities, { max_high: 0 }, NOW, [exception()]).passed, true);
  });
});

const stored = (over: Partial<VulnerabilityException>): VulnerabilityException => ({
  id: '7d1f0a52-9a57-4c4e-9a51-1b3c1e0f2a10',
  vulnerability_id: 'CVE-2021-23337',
  scope: { repository: 'team/*' },
  reason: 'not reachable',
  owner: 'alice',
  expires: '2026-07-01T00:00:00.000Z',
  created_at: '2026-05-01T00:00:00.000Z',
  source: 'api',
  ...over,
});

describe('OpenVEX', () => {
  it('exports not_affected statements that import back to the same exceptions', () => {
    const list = [
      stored({}),
      stored({ id: 'b5d3e0a8-3f51-4f0a-8f1e-2b6a1d1c9e22', vulnerability_id: 'GHSA-35jh-r3h4-6jhm', scope: { digest: DIGEST } }),
    ];
    const doc = exportOpenVex('team-a', list, NOW);
    assert.equal(doc['@context'], 'https://openvex.dev/ns/v0.2.0');
    assert.equal(doc.author, 'stevedore tenant team-a');
    assert.ok(doc.statements.every((s) => s.status === 'not_affected' && s.impact_statement === 'not reachable'));
    assert.deepEqual(doc.statements[1]!.products, [{ '@id': `urn:stevedore:digest:${DIGEST}`, hashes: { 'sha-256': 'ab'.repeat(32) } }]);
    assert.equal(exportOpenVex('team-a', list, new Date())['@id'], doc['@id'], 'the same statements, the same document id');
    const back = importOpenVex(JSON.parse(JSON.stringify(doc)));
    assert.equal(back.author, 'stevedore tenant team-a');
    assert.deepEqual(
      back.exceptions,
      list.map((e) => ({ vulnerability_id: e.vulnerability_id, scope: e.scope, reason: e.reason })),
    );
  });

  it('imports not_affected and fixed statements, skips the others, reads pkg:oci digests', () => {
    const doc = {
      '@context': 'https://openvex.dev/ns/v0.2.0',
      author: 'Vendor PSIRT',
      statements: [
        {
          vulnerability: { name: 'CVE-2021-23337' },
          products: [{ '@id': `pkg:oci/app@sha256%3A${'ab'.repeat(32)}?arch=amd64` }],
          status: 'fixed',
        },
        { vulnerability: { name: 'CVE-2020-8203' }, products: [{ '@id': 'urn:stevedore:repository:team/app' }], status: 'affected' },
        {
          vulnerability: { name: 'CVE-2020-8204' },
          products: [{ '@id': 'urn:stevedore:repository:team/**' }],
          status: 'not_affected',
          justification: 'vulnerable_code_not_present',
        },
      ],
    };
    const r = importOpenVex(doc);
    assert.equal(r.skipped, 1);
    assert.deepEqual(r.exceptions, [
      { vulnerability_id: 'CVE-2021-23337', scope: { digest: DIGEST }, reason: 'OpenVEX statement: fixed' },
      { vulnerability_id: 'CVE-2020-8204', scope: { repository: 'team/**' }, reason: 'vulnerable_code_not_present' },
    ]);
  });

  it('refuses documents it cannot use, naming each problem', () => {
    const bad = (doc: unknown) => {
      try {
        importOpenVex(doc);
      } catch (err) {
        assert.ok(err instanceof VexDocumentError);
        return err.fields.map((f) => f.path);
      }
      assert.fail('accepted');
    };
    assert.deepEqual(bad(null), ['@context', 'author', 'statements']);
    assert.deepEqual(bad({ '@context': 'https://openvex.dev/ns/v0.2.0', author: 'x', statements: [] }), ['statements']);
    const paths = bad({
      '@context': 'https://openvex.dev/ns/v0.2.0',
      author: 'x',
      statements: [
        { vulnerability: { name: 'nope' }, products: [{ '@id': 'pkg:deb/debian/apt@2.6.1' }], status: 'not_affected' },
        { vulnerability: { name: 'CVE-2021-1234' }, products: [{ '@id': 'urn:stevedore:repository:Team/(a|b)' }], status: 'maybe' },
      ],
    });
    assert.deepEqual(paths, [
      'statements.0.vulnerability.name',
      'statements.0.products.0',
      'statements.1.status',
      'statements.1.products.0',
    ]);
  });

  it("names the scanned image by the purl Trivy gives a container image's root", () => {
    const doc = scanVexDocument({ repository: 'team/Scanme', manifestDigest: DIGEST }, [stored({})], NOW);
    assert.deepEqual(doc.statements[0]!.products, [{ '@id': `pkg:oci/scanme@sha256%3A${'ab'.repeat(32)}` }]);
    assert.equal(doc.statements[0]!.status, 'not_affected');
    assert.equal(doc.statements[0]!.vulnerability.name, 'CVE-2021-23337');
  });
});
