import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Vulnerability } from '../../src/engines/trivy/trivy-report.js';
import type { RescanOrigin } from '../../src/jobs/job-types.js';
import { MAX_DIFF_ENTRIES, publishRescanDiff, rescanDiff } from '../../src/workers/rescan-diff.js';

const trivyVuln = (id: string, pkg: string, severity: string, fixed?: string) => ({
  VulnerabilityID: id,
  PkgName: pkg,
  InstalledVersion: '1.0',
  Severity: severity,
  ...(fixed ? { FixedVersion: fixed } : {}),
});
const report = (vulns: ReturnType<typeof trivyVuln>[]) =>
  Buffer.from(JSON.stringify({ Results: [{ Target: 'x', Class: 'os-pkgs', Vulnerabilities: vulns }] }));
const vuln = (id: string, pkg: string, severity: string, fixed: string | null = null) =>
  ({ id, package: pkg, installed_version: '1.0', fixed_version: fixed, severity }) as Vulnerability;

const origin = (reports: string[]): RescanOrigin => ({
  kind: 'rescan',
  db_updated_at: 'new',
  previous: { job_id: 'prev', reports, db_updated_at: 'old', scanned_at: '2026-12-01T00:00:00Z' },
  sbom: null,
});

describe('rescan diff', () => {
  const files = new Map([
    ['trivy-report.linux-amd64.json', report([trivyVuln('CVE-1', 'tar', 'LOW'), trivyVuln('CVE-2', 'apt', 'LOW')])],
    ['trivy-report.linux-arm64.json', report([trivyVuln('CVE-1', 'tar', 'LOW')])],
  ]);
  const artifacts = { read: (job: string, name: string) => Promise.resolve(job === 'prev' ? files.get(name) : undefined) };

  it('compares every platform report of the previous scan with the new findings', async () => {
    const diff = await rescanDiff(artifacts, origin([...files.keys(), 'report.sarif.linux-amd64.json']), [
      vuln('CVE-1', 'tar', 'HIGH'),
      vuln('CVE-3', 'bash', 'CRITICAL', '5.2'),
    ]);
    assert.ok(diff);
    assert.deepEqual(
      diff.introduced.map((f) => f.id),
      ['CVE-3'],
    );
    assert.deepEqual(
      diff.resolved.map((f) => f.id),
      ['CVE-2'],
    );
    assert.deepEqual(
      diff.severity_changed.map((f) => [f.id, f.previous_severity, f.severity]),
      [['CVE-1', 'LOW', 'HIGH']],
    );
    assert.deepEqual(diff.counts, { introduced: 1, resolved: 1, severity_changed: 1, fix_changed: 0 });
    assert.equal(diff.truncated, false);
  });

  it('is undefined when a previous report is gone (nothing to compare with)', async () => {
    assert.equal(await rescanDiff(artifacts, origin(['trivy-report.json']), []), undefined);
    assert.equal(await rescanDiff(artifacts, origin([]), []), undefined);
  });

  it('cuts long lists and says so, with the real counts', async () => {
    const many = Array.from({ length: MAX_DIFF_ENTRIES + 7 }, (_, i) => vuln(`CVE-N-${i}`, 'pkg', 'HIGH'));
    const diff = await rescanDiff(artifacts, origin(['trivy-report.linux-arm64.json']), many);
    assert.equal(diff!.introduced.length, MAX_DIFF_ENTRIES);
    assert.equal(diff!.counts.introduced, MAX_DIFF_ENTRIES + 7);
    assert.equal(diff!.truncated, true);
  });

  it('sends image.vulnerabilities.changed only when findings came, went or were re-rated', async () => {
    const sent: unknown[] = [];
    const events = { publish: (...args: unknown[]) => Promise.resolve(void sent.push(args)) };
    const job = { id: 'j', tenant: 'team-a' };
    const image = { reference: 'r/app@sha256:x', digest: 'sha256:x' };
    const unchanged = await rescanDiff(artifacts, origin(['trivy-report.linux-arm64.json']), [vuln('CVE-1', 'tar', 'LOW', '2.0')]);
    assert.equal(unchanged!.counts.fix_changed, 1);
    assert.equal(await publishRescanDiff(events, job, image, 'new', unchanged!), false);
    const changed = await rescanDiff(artifacts, origin(['trivy-report.linux-arm64.json']), []);
    assert.equal(await publishRescanDiff(events, job, image, 'new', changed!), true);
    const [tenant, type, data] = sent[0] as [string, string, Record<string, unknown>];
    assert.equal(tenant, 'team-a');
    assert.equal(type, 'image.vulnerabilities.changed');
    assert.deepEqual(data.db, { previous: 'old', current: 'new' });
    assert.deepEqual(
      (data.resolved as { id: string }[]).map((f) => f.id),
      ['CVE-1'],
    );
  });
});
