import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { listImagesQuerySchema, recordMatcher } from '../../src/catalogue/catalogue-query.js';
import type { ImageRecord } from '../../src/catalogue/catalogue-record.js';
import { decode } from '../../src/catalogue/catalogue-store.js';

const D = `sha256:${'a'.repeat(64)}`;
const record = (over: Partial<ImageRecord> = {}): ImageRecord => ({
  digest: D,
  repository: '127.0.0.1:5000/team/app',
  repositories: ['127.0.0.1:5000/team/app', 'r.example/release/app'],
  references: [
    { reference: '127.0.0.1:5000/team/app:1.2', repository: '127.0.0.1:5000/team/app', tag: '1.2', first_seen: 'x', last_seen: 'x' },
  ],
  platforms: [],
  size_bytes: null,
  created: null,
  build_job: null,
  first_seen: '2026-01-01T00:00:00.000Z',
  last_seen: '2026-01-01T00:00:00.000Z',
  latest_scan: null,
  signatures: [],
  attestations: [],
  sbom: null,
  ...over,
});
const scan = (summary: Partial<Record<'critical' | 'high' | 'medium' | 'low' | 'unknown', number>>) => ({
  job_id: 'j',
  scanned_at: 'x',
  db_updated_at: null,
  summary: { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, fixable: 0, ...summary },
  policy: { passed: true, violations: 0 },
  platforms: [],
  reports: [],
});
const matches = (query: Record<string, string>, r: ImageRecord) => {
  const { limit: _l, cursor: _c, ...filters } = listImagesQuerySchema.parse(query);
  return recordMatcher(filters)(r);
};

describe('GET /v1/images query', () => {
  it('validates every value and refuses unknown parameters', () => {
    const bad: Record<string, string>[] = [
      { limit: '0' },
      { limit: '201' },
      { limit: '1.5' },
      { limit: 'ten' },
      { severity: 'CRITICAL' },
      { severity: 'unknown' },
      { signed: 'yes' },
      { has_sbom: '1' },
      { tag: 'a:b' },
      { tag: '-x' },
      { repository: 'Team/App' },
      { repository: 'team/app:1' },
      { repository: 'team/**/x' },
      { cursor: 'a b' },
      { state: 'x' },
    ];
    for (const q of bad) assert.equal(listImagesQuerySchema.safeParse(q).success, false, JSON.stringify(q));
    assert.deepEqual(listImagesQuerySchema.parse({}), { limit: 50 });
    assert.deepEqual(listImagesQuerySchema.parse({ limit: '200', signed: 'false', has_sbom: 'true' }), {
      limit: 200,
      signed: false,
      has_sbom: true,
    });
  });

  it('matches repositories exactly or by glob; without a registry on every registry', () => {
    const r = record();
    assert.ok(matches({ repository: '127.0.0.1:5000/team/app' }, r));
    assert.ok(matches({ repository: 'team/*' }, r));
    assert.ok(matches({ repository: 'release/app' }, r), 'any repository it was seen in');
    assert.ok(matches({ repository: '127.0.0.1:5000/team/**' }, r));
    assert.ok(!matches({ repository: 'team' }, r));
    assert.ok(!matches({ repository: 'other/*' }, r));
    assert.ok(!matches({ repository: '127.0.0.1:5001/team/app' }, r));
  });

  it('filters by tag, severity at or above, signed and SBOM', () => {
    assert.ok(matches({ tag: '1.2' }, record()));
    assert.ok(!matches({ tag: '1.3' }, record()));
    const high = record({ latest_scan: scan({ high: 1, low: 4 }) });
    assert.ok(matches({ severity: 'high' }, high));
    assert.ok(matches({ severity: 'low' }, high));
    assert.ok(!matches({ severity: 'critical' }, high));
    assert.ok(!matches({ severity: 'low' }, record({ latest_scan: scan({ unknown: 3 }) })), 'unknown is below low');
    assert.ok(!matches({ severity: 'low' }, record()), 'never scanned: no findings known');
    const signed = record({ signatures: [{ key: 'k', job_id: 'j', at: 'x' }] });
    assert.ok(matches({ signed: 'true' }, signed) && !matches({ signed: 'false' }, signed));
    assert.ok(matches({ signed: 'false' }, record()) && !matches({ signed: 'true' }, record()));
    const sbom = record({ sbom: { job_id: 'j', artifact: 'sbom.cdx.json', platforms: [], attached: false } });
    assert.ok(matches({ has_sbom: 'true' }, sbom) && !matches({ has_sbom: 'true' }, record()));
    assert.ok(matches({ tag: '1.2', signed: 'true', severity: 'medium' }, record({ ...signed, latest_scan: scan({ high: 1 }) })));
  });
});

describe('a catalogue record from its Redis hash', () => {
  it('assembles references, signatures and attestations, hiding guard and counter fields', () => {
    const raw = {
      digest: D,
      repository: 'r.example/team/app',
      first_seen: '2026-01-01T00:00:00.000Z',
      last_seen: '2026-01-03T00:00:00.000Z',
      'repo:r.example/team/app': '2026-01-01T00:00:00.000Z|2026-01-03T00:00:00.000Z',
      '#repo:': '1',
      'ref:r.example/team/app:1': '2026-01-01T00:00:00.000Z|2026-01-01T00:00:00.000Z',
      'ref:r.example/team/app:2': '2026-01-02T00:00:00.000Z|2026-01-03T00:00:00.000Z',
      '#ref:': '2',
      'sig:release': JSON.stringify({ key: 'release', job_id: 'j1', at: '2026-01-02T00:00:00.000Z' }),
      'sig:release@': '2026-01-02T00:00:00.000Z',
      'att:vuln': JSON.stringify({ type: 'vuln', job_id: 'j1', at: 'x' }),
      platforms: '["linux/amd64"]',
      size_bytes: '42',
      build_job: 'j1',
      'build_job@': 'x',
    };
    const r = decode(raw)!;
    assert.deepEqual(
      r.references.map((x) => x.tag),
      ['2', '1'],
      'most recently seen first',
    );
    assert.deepEqual(r.repositories, ['r.example/team/app']);
    assert.deepEqual(r.signatures, [{ key: 'release', job_id: 'j1', at: '2026-01-02T00:00:00.000Z' }]);
    assert.equal(r.attestations[0]!.type, 'vuln');
    assert.equal(r.size_bytes, 42);
    assert.equal(r.build_job, 'j1');
    assert.equal(r.latest_scan, null);
    assert.equal(r.sbom, null);
    assert.ok(!JSON.stringify(r).includes('#'));
    assert.equal(decode({}), undefined);
    assert.equal(decode({ 'ref:x': 'y' }), undefined, 'a hash without its core fields is no record');
  });
});
