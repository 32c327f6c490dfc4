import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Vulnerability } from '../../src/engines/trivy/trivy-report.js';
import { evaluateNamedPolicy, scanAgeViolation, type PolicyFinding } from '../../src/policies/evaluate-named-policy.js';
import type { NamedPolicyRules, PolicySnapshot } from '../../src/policies/policy.schema.js';
import { reportFacts, withPublishedDates } from '../../src/policies/report-facts.js';
import { finding as aFinding } from '../support/findings.js';

const NOW = new Date('2026-12-03T12:00:00Z');
const daysAgo = (n: number) => new Date(NOW.getTime() - n * 86_400_000).toISOString();

const finding = (id: string, pkg: string, severity: Vulnerability['severity'], extra: Partial<PolicyFinding> = {}): PolicyFinding => ({
  ...aFinding(id, pkg, '1.0.0', severity),
  ...extra,
});
const policy = (rules: NamedPolicyRules, version = 3): PolicySnapshot => ({ name: 'prod', version, updated_at: daysAgo(1), rules });
const judge = (
  rules: NamedPolicyRules,
  findings: PolicyFinding[],
  packages: { name: string; version: string }[] = [],
  scannedAt: string | null = NOW.toISOString(),
) => evaluateNamedPolicy(policy(rules), { findings, packages, scannedAt }, NOW);

describe('evaluateNamedPolicy', () => {
  it('applies only the limits it sets (no default limits), names the policy and its version', () => {
    const findings = [finding('CVE-1', 'a', 'CRITICAL'), finding('CVE-2', 'b', 'HIGH')];
    const open = judge({ deny_packages: [] }, findings);
    assert.equal(open.passed, true);
    assert.deepEqual(open.named_policy, { name: 'prod', version: 3 });
    const strict = judge({ max_critical: 0 }, findings);
    assert.equal(strict.passed, false);
    assert.deepEqual(
      strict.violations.map((v) => [v.id, v.rule]),
      [['CVE-1', 'max_critical=0']],
    );
    assert.deepEqual(strict.rules_failed, ['max_critical']);
  });

  it('only_fixable: unfixed findings do not count, and are counted as left out', () => {
    const findings = [finding('CVE-1', 'a', 'HIGH'), finding('CVE-2', 'b', 'HIGH', { fixed_version: '1.0.1' })];
    const all = judge({ max_high: 1 }, findings);
    assert.equal(all.passed, false, 'two HIGH, one allowed');
    const fixable = judge({ max_high: 1, only_fixable: true }, findings);
    assert.equal(fixable.passed, true);
    assert.equal(fixable.not_counted.unfixed, 1);
    const none = judge({ max_high: 0, only_fixable: true }, findings);
    assert.deepEqual(
      none.violations.map((v) => v.id),
      ['CVE-2'],
    );
  });

  it('fix_grace_days: a fix younger than the grace does not count yet; older, or of unknown age, counts', () => {
    const young = finding('CVE-Y', 'a', 'CRITICAL', { fixed_version: '2', published_date: daysAgo(3) });
    const old = finding('CVE-O', 'b', 'CRITICAL', { fixed_version: '2', published_date: daysAgo(30) });
    const undated = finding('CVE-U', 'c', 'CRITICAL', { fixed_version: '2' });
    const unfixed = finding('CVE-N', 'd', 'CRITICAL', { published_date: daysAgo(1) });
    const v = judge({ max_critical: 0, fix_grace_days: 7 }, [young, old, undated, unfixed]);
    assert.deepEqual(v.violations.map((x) => x.id).sort(), ['CVE-N', 'CVE-O', 'CVE-U'], 'the grace is about fixes: unfixed ones count');
    assert.deepEqual(v.not_counted.in_grace, [
      { id: 'CVE-Y', package: 'a', fix_available_since: daysAgo(3), counts_from: new Date(NOW.getTime() + 4 * 86_400_000).toISOString() },
    ]);
    // Exactly at the end of the grace, it counts.
    assert.equal(judge({ max_critical: 0, fix_grace_days: 3 }, [young]).passed, false);
    assert.equal(judge({ max_critical: 0, fix_grace_days: 4 }, [young]).passed, true);
    // A caller that knows when the fix appeared (the catalogue) overrides the advisory date.
    const seenLate = { ...old, fix_available_since: daysAgo(2) };
    assert.equal(judge({ max_critical: 0, fix_grace_days: 7 }, [seenLate]).passed, true);
  });

  it('keeps the allow-list of the scan gate, with its expiries', () => {
    const findings = [finding('CVE-1', 'a', 'HIGH')];
    const allowed = judge({ max_high: 0, allow: [{ id: 'CVE-1', reason: 'not reachable' }] }, findings);
    assert.equal(allowed.passed, true);
    assert.deepEqual(allowed.allowed, [{ id: 'CVE-1', reason: 'not reachable', expires: null }]);
    const expired = judge({ max_high: 0, allow: [{ id: 'CVE-1', reason: 'was fine', expires: '2020-01-01' }] }, findings);
    assert.equal(expired.passed, false);
    assert.equal(expired.expired.length, 1);
  });

  it('deny_packages: names the package and version of each hit, by exact version, range or any version', () => {
    const packages = [
      { name: 'lodash', version: '4.17.20' },
      { name: 'tar', version: '1.34+dfsg-1.2+deb12u1' },
      { name: 'openssl', version: '3.0.15-1~deb12u1' },
    ];
    const hit = (deny: NamedPolicyRules['deny_packages']) => judge({ deny_packages: deny }, [], packages).violations;
    assert.deepEqual(hit([{ name: 'lodash', versions: '<4.17.21' }]), [
      {
        id: 'lodash@4.17.20',
        package: 'lodash',
        version: '4.17.20',
        severity: null,
        rule: 'deny_packages',
        detail: 'lodash <4.17.21 is denied',
      },
    ]);
    assert.deepEqual(hit([{ name: 'lodash', versions: '>=4.17.21' }]), []);
    assert.deepEqual(hit([{ name: 'lodash', versions: '4.17.20' }]).length, 1, 'an exact version');
    assert.deepEqual(hit([{ name: 'lodash', versions: '4.17.2' }]), [], 'exact means exact');
    assert.deepEqual(
      hit([{ name: 'tar' }]).map((v) => v.version),
      ['1.34+dfsg-1.2+deb12u1'],
      'no versions: any',
    );
    assert.equal(hit([{ name: 'tar', versions: '<1.34+dfsg-1.2+deb12u2' }]).length, 1, 'Debian revisions order');
    assert.equal(hit([{ name: 'openssl', versions: '>=3.0.15-1 <3.1' }]).length, 0, 'a ~ version sorts before the one without');
    assert.equal(hit([{ name: 'openssl', versions: '>=3.0.15 <3.1' }]).length, 1, 'a Debian revision of 3.0.15 is >= 3.0.15');
    assert.equal(hit([{ name: 'Lodash' }]).length, 0, 'names are exact');
    const v = judge({ max_high: 0, deny_packages: [{ name: 'lodash' }] }, [finding('CVE-1', 'x', 'HIGH')], packages);
    assert.deepEqual(v.rules_failed, ['max_high', 'deny_packages']);
  });

  it('max_scan_age: fails when the scan is older than allowed or its time unknown', () => {
    assert.equal(judge({ max_scan_age: '7d' }, [], [], daysAgo(6)).passed, true);
    const stale = judge({ max_scan_age: '7d' }, [], [], daysAgo(8));
    assert.equal(stale.passed, false);
    assert.deepEqual(stale.rules_failed, ['max_scan_age']);
    assert.match(stale.violations[0]!.detail!, /192 h old/);
    assert.equal(judge({ max_scan_age: '7d' }, [], [], null).violations[0]!.detail, 'no scan of this image on record');
    assert.equal(judge({}, [], [], null).passed, true, 'without the rule, the scan time does not matter');
  });
});

describe('scanAgeViolation (for sign and push)', () => {
  it('compares the last scan time with the allowed age, to the millisecond', () => {
    const at = new Date(NOW.getTime() - 24 * 3_600_000);
    assert.equal(scanAgeViolation('24h', at, NOW), null);
    assert.equal(scanAgeViolation('24h', new Date(at.getTime() - 1), NOW)?.rule, 'max_scan_age=24h');
    assert.equal(scanAgeViolation('30m', new Date(NOW.getTime() - 29 * 60_000).toISOString(), NOW), null);
    assert.notEqual(scanAgeViolation('1d', undefined, NOW), null);
    assert.notEqual(scanAgeViolation('1d', 'not a date', NOW), null);
  });
});

describe('reportFacts', () => {
  const report = {
    Results: [
      {
        Packages: [
          { Name: 'tar', Version: '1.34+dfsg', Release: '1.2+deb12u1' },
          { Name: 'perl-base', Version: '5.36.0', Release: '7+deb12u1', Epoch: 1 },
        ],
        Vulnerabilities: [
          {
            VulnerabilityID: 'CVE-2019-9923',
            PkgName: 'tar',
            InstalledVersion: '1.34+dfsg-1.2+deb12u1',
            PublishedDate: '2019-03-22T08:29:00Z',
          },
        ],
      },
      {
        Packages: [
          { Name: 'lodash', Version: '4.17.20' },
          { Name: 'lodash', Version: '4.17.20' },
        ],
      },
    ],
  };

  it("lists packages in Trivy's spelling of a version, once each, and the advisory dates per finding", () => {
    const facts = reportFacts(report);
    assert.deepEqual(facts.packages, [
      { name: 'tar', version: '1.34+dfsg-1.2+deb12u1' },
      { name: 'perl-base', version: '1:5.36.0-7+deb12u1' },
      { name: 'lodash', version: '4.17.20' },
    ]);
    const [dated, undated] = withPublishedDates(
      [
        finding('CVE-2019-9923', 'tar', 'LOW', { installed_version: '1.34+dfsg-1.2+deb12u1' }),
        finding('CVE-2019-9923', 'tar', 'LOW', { installed_version: 'other' }),
      ],
      facts,
    );
    assert.equal(dated!.published_date, '2019-03-22T08:29:00Z');
    assert.equal(undated!.published_date, null);
    assert.deepEqual(reportFacts({}).packages, []);
  });
});
