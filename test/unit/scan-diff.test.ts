import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffPackages, diffScans, isEmptyDiff, sbomPackages } from '../../src/analysis/vulnerabilities/scan-diff.js';
import { finding } from '../support/findings.js';

const vuln = finding;

describe('the diff of two scans of one digest', () => {
  it('names what a new DB introduced, resolved, re-rated and fixed', () => {
    const before = [vuln('CVE-1', 'apt', '2.6', 'LOW'), vuln('CVE-2', 'zlib1g', '1.2', 'HIGH'), vuln('CVE-3', 'libc6', '2.36', 'MEDIUM')];
    const after = [
      vuln('CVE-1', 'apt', '2.6', 'LOW'),
      vuln('CVE-3', 'libc6', '2.36', 'CRITICAL', '2.37'),
      vuln('CVE-4', 'apt', '2.6', 'HIGH'),
    ];
    const d = diffScans(before, after);
    assert.deepEqual(
      d.introduced.map((f) => f.id),
      ['CVE-4'],
    );
    assert.deepEqual(
      d.resolved.map((f) => f.id),
      ['CVE-2'],
    );
    assert.deepEqual(
      d.severity_changed.map((f) => [f.id, f.previous_severity, f.severity]),
      [['CVE-3', 'MEDIUM', 'CRITICAL']],
    );
    assert.deepEqual(
      d.fix_changed.map((f) => [f.id, f.previous_fixed_version, f.fixed_version]),
      [['CVE-3', null, '2.37']],
    );
    assert.equal(isEmptyDiff(d), false);
    assert.equal(isEmptyDiff(diffScans(before, before)), true);
  });

  it('treats the same advisory in another package or version as another finding', () => {
    const d = diffScans([vuln('CVE-1', 'apt', '2.6', 'LOW')], [vuln('CVE-1', 'apt', '2.7', 'LOW'), vuln('CVE-1', 'libapt', '2.6', 'LOW')]);
    assert.deepEqual(
      d.introduced.map((f) => `${f.package}@${f.installed_version}`),
      ['apt@2.7', 'libapt@2.6'],
    );
    assert.deepEqual(
      d.resolved.map((f) => `${f.package}@${f.installed_version}`),
      ['apt@2.6'],
    );
  });
});

describe('the package diff of two builds of one tag', () => {
  it('reads a CycloneDX SBOM and reports added, removed and changed packages by type and name', () => {
    const sbom = (comps: object[]) => ({ bomFormat: 'CycloneDX', components: comps });
    const before = sbomPackages(
      sbom([
        { name: 'libc6', version: '2.36-9', purl: 'pkg:deb/debian/libc6@2.36-9' },
        { name: 'ms', version: '2.1.2', purl: 'pkg:npm/ms@2.1.2' },
        { name: 'gcc', version: '12', purl: 'pkg:deb/debian/gcc@12' },
        { name: 'noversion' },
      ]),
    );
    const after = sbomPackages(
      sbom([
        { name: 'libc6', version: '2.36-9', purl: 'pkg:deb/debian/libc6@2.36-9' },
        { name: 'ms', version: '2.1.3', purl: 'pkg:npm/ms@2.1.3' },
        { name: 'ms', version: '9', purl: 'pkg:pypi/ms@9' },
      ]),
    );
    assert.equal(before.length, 3, 'a component without a version is not a package');
    const d = diffPackages(before, after);
    assert.deepEqual(d.added, [{ name: 'ms', version: '9', type: 'pypi' }]);
    assert.deepEqual(d.removed, [{ name: 'gcc', version: '12', type: 'deb' }]);
    assert.deepEqual(d.changed, [{ name: 'ms', type: 'npm', from: '2.1.2', to: '2.1.3' }]);
    assert.deepEqual(sbomPackages(null), []);
    assert.deepEqual(sbomPackages({ components: 'x' }), []);
  });
});
