import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { catalogueUpdates } from '../../src/catalogue/from-job.js';
import type { JobRecord } from '../../src/jobs/job-types.js';

const INDEX = `sha256:${'a'.repeat(64)}`;
const AMD64 = `sha256:${'b'.repeat(64)}`;
const ARM64 = `sha256:${'c'.repeat(64)}`;
const REG = '127.0.0.1:5000';
const AT = '2026-12-03T10:00:00.000Z';
const SUMMARY = { critical: 1, high: 2, medium: 0, low: 3, unknown: 0, fixable: 4 };

const job = (action: string, request: object, result: object | null, extra: Partial<JobRecord> = {}) =>
  ({
    id: `job-${action}`,
    tenant: 'team-a',
    action,
    state: 'succeeded',
    request: { action, ...request },
    result,
    error: null,
    finished_at: AT,
    ...extra,
  }) as unknown as JobRecord;

const imageInfo = {
  digest: INDEX,
  manifest_digest: AMD64,
  platforms: ['linux/amd64', 'linux/arm64'],
  size_bytes: 1234,
  created: '1970-01-01T00:00:00Z',
};

describe('catalogueUpdates: what a finished job tells the catalogue', () => {
  it('a pushed build with the whole pipeline: tags, image facts, scan, signature, attestations, SBOM and copies', () => {
    const updates = catalogueUpdates(
      job(
        'build',
        { tags: [`${REG}/team/app:1`, `${REG}/team/app:latest`], sign: { key: 'release' }, push_to: [`${REG}/release/app:1`] },
        {
          image_info: imageInfo,
          build: { digest: INDEX, duration_ms: 1, steps: [] },
          tags: [`${REG}/team/app:1`, `${REG}/team/app:latest`],
          summary: SUMMARY,
          policy: { passed: true, violations: [], allowed: [], expired: [], limits: {} },
          scanner: { name: 'trivy', db_updated_at: '2026-12-01T00:00:00Z', scanners: ['secret', 'vuln'] },
          artifacts: ['report.sarif.linux-amd64.json', 'sbom.cdx.linux-amd64.json', 'trivy-report.linux-amd64.json', 'vuln.cosign.x.json'],
          signed: {
            reference: `${REG}/team/app@${INDEX}`,
            digest: INDEX,
            key: 'release',
            platforms: [{ platform: 'linux/amd64', digest: AMD64 }],
          },
          attestations: ['cyclonedx', 'vuln'],
          sbom: [
            { platform: 'linux/amd64', digest: AMD64, artifact: 'sbom.cdx.linux-amd64.json' },
            { platform: 'linux/arm64', digest: ARM64, artifact: 'sbom.cdx.linux-arm64.json' },
          ],
          pushed: [{ reference: `${REG}/release/app:1`, digest: INDEX }],
          vulnerabilities: [],
          optimization_suggestions: [],
        },
      ),
    );
    assert.equal(updates.length, 2);
    const [built, copied] = updates;
    assert.deepEqual(built, {
      tenant: 'team-a',
      digest: INDEX,
      at: AT,
      repository: `${REG}/team/app`,
      repositories: [`${REG}/team/app`],
      references: [`${REG}/team/app:1`, `${REG}/team/app:latest`],
      image: { platforms: ['linux/amd64', 'linux/arm64'], size_bytes: 1234, created: '1970-01-01T00:00:00Z' },
      build_job: 'job-build',
      scan: {
        job_id: 'job-build',
        scanned_at: AT,
        db_updated_at: '2026-12-01T00:00:00Z',
        summary: SUMMARY,
        policy: { passed: true, violations: 0 },
        platforms: ['linux/amd64', 'linux/arm64'],
        reports: ['report.sarif.linux-amd64.json', 'trivy-report.linux-amd64.json'],
      },
      signatures: [{ key: 'release', job_id: 'job-build', at: AT }],
      attestations: [
        { type: 'cyclonedx', job_id: 'job-build', at: AT },
        { type: 'vuln', job_id: 'job-build', at: AT },
      ],
      sbom: {
        job_id: 'job-build',
        artifact: 'sbom.cdx.linux-amd64.json',
        platforms: [
          { platform: 'linux/amd64', digest: AMD64, artifact: 'sbom.cdx.linux-amd64.json' },
          { platform: 'linux/arm64', digest: ARM64, artifact: 'sbom.cdx.linux-arm64.json' },
        ],
        attached: true,
      },
    });
    assert.deepEqual(copied, {
      tenant: 'team-a',
      digest: INDEX,
      at: AT,
      repository: `${REG}/release/app`,
      repositories: [`${REG}/release/app`],
      references: [`${REG}/release/app:1`],
    });
  });

  it('an SBOM stored without a signature is not attached; a build that did not push records nothing', () => {
    const [stored] = catalogueUpdates(
      job(
        'build',
        {},
        {
          image_info: {},
          build: { digest: INDEX },
          tags: [`${REG}/t/a:1`],
          sbom: [{ platform: 'linux/amd64', digest: AMD64, artifact: 'sbom.cdx.json' }],
        },
      ),
    );
    assert.equal(stored!.sbom?.attached, false);
    assert.equal(stored!.image, undefined, 'image_info of another digest (here: none) is not this digest’s');
    assert.deepEqual(catalogueUpdates(job('build', {}, { image_info: {}, build: { digest: INDEX }, tags: [] })), []);
    assert.deepEqual(catalogueUpdates(job('build', {}, { image_info: {}, build: { digest: null }, tags: [`${REG}/t/a:1`] })), []);
  });

  it('a build stopped by its gate: the pushed tags and the failed verdict', () => {
    const [gated, ...rest] = catalogueUpdates(
      job('build', { tags: [`${REG}/team/app:2`], scan: {} }, null, {
        state: 'failed',
        error: {
          code: 'POLICY_FAILED',
          message: 'policy gate failed',
          details: {
            violations: [{ id: 'CVE-1' }, { id: 'CVE-2' }],
            policy: { passed: false, violations: [{ id: 'CVE-1' }, { id: 'CVE-2' }] },
            digest: INDEX,
            summary: SUMMARY,
            scanner: { db_updated_at: null },
            artifacts: ['trivy-report.json', 'sbom.cdx.json', 'report.sarif.json'],
            platforms: ['linux/amd64'],
          },
        },
      }),
    );
    assert.deepEqual(rest, []);
    assert.equal(gated!.digest, INDEX);
    assert.deepEqual(gated!.references, [`${REG}/team/app:2`]);
    assert.equal(gated!.build_job, 'job-build');
    assert.deepEqual(gated!.scan?.policy, { passed: false, violations: 2 });
    assert.deepEqual(gated!.scan?.reports, ['trivy-report.json', 'report.sarif.json']);
    assert.equal(gated!.scan?.db_updated_at, null);
  });

  it('a scan: the top digest, its summary and verdict, reports and per-platform SBOMs', () => {
    const [scan] = catalogueUpdates(
      job(
        'scan',
        { image: `${REG}/library/debian:bookworm-slim` },
        {
          image_info: imageInfo,
          summary: SUMMARY,
          policy: { passed: false, violations: [{ id: 'CVE-1' }] },
          scanner: { name: 'trivy', db_updated_at: '2026-12-01T00:00:00Z' },
          artifacts: ['trivy-report.linux-amd64.json', 'sbom.cdx.linux-amd64.json'],
          platforms: [
            {
              platform: 'linux/amd64',
              manifest_digest: AMD64,
              artifacts: { report: 'trivy-report.linux-amd64.json', sbom: 'sbom.cdx.linux-amd64.json' },
            },
            {
              platform: 'linux/arm64',
              manifest_digest: ARM64,
              artifacts: { report: 'trivy-report.linux-arm64.json', sbom: 'sbom.cdx.linux-arm64.json' },
            },
          ],
        },
      ),
    );
    assert.equal(scan!.digest, INDEX);
    assert.deepEqual(scan!.references, [`${REG}/library/debian:bookworm-slim`]);
    assert.equal(scan!.build_job, undefined);
    assert.deepEqual(scan!.scan?.platforms, ['linux/amd64', 'linux/arm64']);
    assert.deepEqual(scan!.scan?.policy, { passed: false, violations: 1 });
    assert.deepEqual(
      scan!.sbom?.platforms.map((p) => p.artifact),
      ['sbom.cdx.linux-amd64.json', 'sbom.cdx.linux-arm64.json'],
    );
    // Scanned by digest: no tag seen.
    const [pinned] = catalogueUpdates(
      job('scan', { image: `${REG}/team/app@${INDEX}` }, { image_info: imageInfo, summary: SUMMARY, policy: { passed: true } }),
    );
    assert.deepEqual(pinned!.references, []);
    assert.equal(pinned!.repository, `${REG}/team/app`);
  });

  it('a sign: the key name only, the platforms of an index', () => {
    const [sign] = catalogueUpdates(
      job(
        'sign',
        { image: `${REG}/team/app:1`, key: 'release' },
        {
          signed: {
            reference: `${REG}/team/app@${INDEX}`,
            digest: INDEX,
            key: 'release',
            platforms: [{ platform: 'linux/amd64', digest: AMD64 }],
          },
        },
      ),
    );
    assert.deepEqual(sign, {
      tenant: 'team-a',
      digest: INDEX,
      at: AT,
      repository: `${REG}/team/app`,
      repositories: [`${REG}/team/app`],
      references: [`${REG}/team/app:1`],
      image: { platforms: ['linux/amd64'] },
      signatures: [{ key: 'release', job_id: 'job-sign', at: AT }],
    });
    assert.ok(!JSON.stringify(sign).includes('password'));
  });

  it('a push: each copied digest with source and destination tags, also from a push that failed elsewhere', () => {
    const pushed = [
      { reference: `${REG}/team/copy:v1`, digest: INDEX },
      { reference: `127.0.0.1:6000/mirror/debian:v1`, digest: INDEX },
    ];
    const [ok] = catalogueUpdates(job('push', { image: `${REG}/library/debian:bookworm-slim` }, { pushed }));
    assert.deepEqual(ok!.repositories, [`${REG}/library/debian`, `${REG}/team/copy`, '127.0.0.1:6000/mirror/debian']);
    assert.deepEqual(ok!.references, [`${REG}/library/debian:bookworm-slim`, `${REG}/team/copy:v1`, '127.0.0.1:6000/mirror/debian:v1']);
    const partial = catalogueUpdates(
      job('push', { image: `${REG}/library/debian:bookworm-slim` }, null, {
        state: 'failed',
        error: {
          code: 'PUSH_FAILED',
          message: '1 of 2 failed',
          details: { pushed: pushed.slice(0, 1), failed: [{ reference: 'x', error: 'y' }] },
        },
      }),
    );
    assert.deepEqual(partial[0]!.references, [`${REG}/library/debian:bookworm-slim`, `${REG}/team/copy:v1`]);
  });

  it('records nothing for verify, inspect, other failures, and results that are not what they claim', () => {
    assert.deepEqual(catalogueUpdates(job('verify', { image: `${REG}/a/b:1` }, { verification: { verified: true, digest: INDEX } })), []);
    assert.deepEqual(catalogueUpdates(job('inspect', { image: `${REG}/a/b:1` }, { image_info: imageInfo })), []);
    assert.deepEqual(
      catalogueUpdates(
        job('scan', { image: `${REG}/a/b:1` }, null, { state: 'failed', error: { code: 'SCAN_FAILED', message: '', details: {} } }),
      ),
      [],
    );
    assert.deepEqual(catalogueUpdates(job('cancelled-build', {}, null, { state: 'cancelled' })), []);
    // Garbage in a stored result: fewer facts, never a throw.
    assert.deepEqual(catalogueUpdates(job('scan', { image: `${REG}/a/b:1` }, { image_info: { digest: 'sha256:nothex' } })), []);
    assert.deepEqual(catalogueUpdates(job('sign', { image: 42 }, { signed: { digest: INDEX, key: 'k', reference: '-bad' } })), []);
    assert.deepEqual(catalogueUpdates(job('push', {}, { pushed: [{ reference: 'Not A Ref', digest: INDEX }, 'x', null] })), []);
    const [noPolicy] = catalogueUpdates(job('scan', { image: `${REG}/a/b:1` }, { image_info: imageInfo, summary: { critical: 'x' } }));
    assert.equal(noPolicy!.scan, undefined);
  });

  it('uses the finish time, or the clock when the job has none', () => {
    const now = new Date('2026-12-24T00:00:00Z');
    const [u] = catalogueUpdates(
      job('sign', {}, { signed: { reference: `${REG}/a/b@${INDEX}`, digest: INDEX, key: 'k' } }, { finished_at: null }),
      now,
    );
    assert.equal(u!.at, now.toISOString());
  });
});
