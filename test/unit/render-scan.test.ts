import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderScan } from '../../src/cli/client/render-scan.js';

describe('scan rendering of several platforms', () => {
  const summary = (high: number, critical = 0) => ({ critical, high, medium: 0, low: 1, unknown: 0, fixable: 0 });
  const result = {
    image_info: { reference: 'r/app:1', digest: 'sha256:index', manifest_digest: 'sha256:amd' },
    vulnerabilities: [
      {
        id: 'CVE-2011-3374',
        package: 'apt',
        installed_version: '2.6.1',
        fixed_version: null,
        severity: 'LOW',
        platforms: ['linux/amd64', 'linux/arm64'],
      },
      {
        id: 'CVE-2021-23337',
        package: 'lodash',
        installed_version: '4.17.20',
        fixed_version: '4.17.21',
        severity: 'HIGH',
        platforms: ['linux/arm64'],
      },
    ],
    policy: {
      passed: false,
      violations: [{ id: 'CVE-2021-23337', package: 'lodash', severity: 'HIGH', rule: 'max_high=0', platform: 'linux/arm64' }],
    },
    platforms: [
      { platform: 'linux/amd64', summary: summary(0), policy: { passed: true, violations: [] }, cached: true },
      {
        platform: 'linux/arm64',
        summary: summary(1),
        policy: { passed: false, violations: [{ id: 'CVE-2021-23337', package: 'lodash', severity: 'HIGH', rule: 'max_high=0' }] },
      },
    ],
  };

  it('shows a line per platform with its counts and gate, where each finding is, and the failing platform', () => {
    const lines = renderScan(result);
    assert.equal(lines[0], 'r/app:1 (sha256:index)');
    assert.deepEqual(lines.slice(2, 5), [
      'PLATFORM              CRITICAL  HIGH  MEDIUM  LOW  UNKNOWN  GATE',
      'linux/amd64 [cached]  0         0     0       1    0        PASSED',
      'linux/arm64           0         1     0       1    0        FAILED (1)',
    ]);
    assert.ok(
      lines.some((l) => /^CVE-2021-23337 .* linux\/arm64(\s|$)/.test(l)),
      lines.join('\n'),
    );
    assert.ok(
      lines.some((l) => /^CVE-2011-3374 .* all(\s|$)/.test(l)),
      lines.join('\n'),
    );
    assert.ok(lines.includes('  max_high=0: CVE-2021-23337 (lodash) [linux/arm64]'), lines.join('\n'));
  });

  it('lists a finding that broke a rule on every platform once, without platforms', () => {
    const apt = { id: 'CVE-2011-3374', package: 'apt', severity: 'LOW', rule: 'max_low=0' };
    const lines = renderScan({
      ...result,
      policy: {
        passed: false,
        violations: [
          { ...apt, platform: 'linux/amd64' },
          { ...apt, platform: 'linux/arm64' },
          { ...result.policy.violations[0]!, rule: 'max_low=0' },
        ],
      },
    });
    assert.ok(lines.includes('policy: FAILED (3 violations)'), lines.join('\n'));
    assert.ok(lines.includes('  max_low=0: CVE-2011-3374 (apt), CVE-2021-23337 (lodash) [linux/arm64]'), lines.join('\n'));
  });

  it('keeps the single-platform form for one platform', () => {
    const lines = renderScan({ ...result, platforms: [result.platforms[1]!] });
    assert.equal(lines[0], 'r/app:1 (sha256:amd)');
    assert.ok(!lines.some((l) => l.startsWith('PLATFORM')));
    assert.ok(lines.includes('  max_high=0: CVE-2021-23337 (lodash)'), lines.join('\n'));
  });
});
