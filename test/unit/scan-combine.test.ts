import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJobRequest } from '../../src/admission/parse-request.js';
import { AppError } from '../../src/errors/app-error.js';
import { evaluatePolicy, type ScanPolicy } from '../../src/engines/trivy/scan-policy.js';
import type { SecretFinding, Vulnerability } from '../../src/engines/trivy/trivy-report.js';
import { submitToBody } from '../../src/grpc/jobs.grpc-controller.js';
import { artifactMediaType, scanArtifactNames } from '../../src/jobs/artifact-store.js';
import { combineFindings } from '../../src/workers/scan-combine.js';

const vuln = (
  id: string,
  pkg: string,
  version: string,
  severity: Vulnerability['severity'],
  extra: Partial<Vulnerability> = {},
): Vulnerability => ({
  id,
  package: pkg,
  installed_version: version,
  fixed_version: null,
  severity,
  status: 'affected',
  title: id,
  url: null,
  cvss_score: null,
  target: 'img@sha256:x (debian 12.8)',
  class: 'os-pkgs',
  layer_digest: null,
  ...extra,
});
const secret = (rule: string, target: string, line: number): SecretFinding => ({
  rule,
  category: 'AWS',
  severity: 'CRITICAL',
  target,
  line,
  layer_digest: null,
});
const platform = (name: string, vulnerabilities: Vulnerability[], secrets: SecretFinding[] = [], policy: ScanPolicy = { max_high: 0 }) => ({
  platform: name,
  vulnerabilities,
  secrets,
  policy: evaluatePolicy(vulnerabilities, policy),
});

describe('combining the platforms of a scan', () => {
  const apt = vuln('CVE-2011-3374', 'apt', '2.6.1', 'LOW');
  const tarAmd = vuln('CVE-2019-9923', 'tar', '1.34', 'HIGH', { fixed_version: '1.35', layer_digest: 'sha256:amd' });
  const tarArm = { ...tarAmd, layer_digest: 'sha256:arm', target: 'img@sha256:y (debian 12.8)' };
  const lodash = vuln('CVE-2021-23337', 'lodash', '4.17.20', 'HIGH', { class: 'lang-pkgs', target: 'app/package.json' });

  it('counts a finding once however many platforms have it, and lists where it was found', () => {
    const c = combineFindings([platform('linux/amd64', [apt, tarAmd]), platform('linux/arm64', [apt, tarArm, lodash])]);
    assert.deepEqual(
      c.vulnerabilities.map((v) => [v.id, v.platforms]),
      [
        ['CVE-2011-3374', ['linux/amd64', 'linux/arm64']],
        ['CVE-2019-9923', ['linux/amd64', 'linux/arm64']],
        ['CVE-2021-23337', ['linux/arm64']],
      ],
    );
    assert.equal(c.vulnerabilities[1]!.layer_digest, 'sha256:amd', "the first platform's fields");
    assert.deepEqual(c.summary, { critical: 0, high: 2, medium: 0, low: 1, unknown: 0, fixable: 1 });
  });

  it('keeps another installed version apart, and duplicates within one platform as Trivy reported them', () => {
    const older = vuln('CVE-2011-3374', 'apt', '2.6.0', 'LOW');
    const twice = { ...lodash, target: 'other/package.json' };
    const c = combineFindings([platform('linux/amd64', [apt, lodash, twice]), platform('linux/arm64', [older, lodash])]);
    assert.deepEqual(
      c.vulnerabilities.map((v) => [v.id, v.installed_version, v.target, v.platforms]),
      [
        ['CVE-2011-3374', '2.6.1', apt.target, ['linux/amd64']],
        ['CVE-2021-23337', '4.17.20', 'app/package.json', ['linux/amd64', 'linux/arm64']],
        ['CVE-2021-23337', '4.17.20', 'other/package.json', ['linux/amd64']],
        ['CVE-2011-3374', '2.6.0', older.target, ['linux/arm64']],
      ],
    );
    assert.equal(c.summary.high, 2);
    assert.equal(c.summary.low, 2);
  });

  it('reads a single platform exactly as its own findings', () => {
    const twice = { ...lodash, target: 'other/package.json' };
    // An allow-list naming an id twice, expired: listed twice, as for any scan.
    const allow = [1, 2].map(() => ({ id: 'CVE-2011-3374', reason: 'old', expires: '2020-01-01' }));
    const one = platform('linux/amd64', [apt, lodash, twice], [secret('aws-access-key-id', 'root/.aws/credentials', 2)], {
      max_high: 0,
      allow,
    });
    const c = combineFindings([one]);
    assert.deepEqual(
      c.vulnerabilities.map(({ platforms, ...v }) => (assert.deepEqual(platforms, ['linux/amd64']), v)),
      one.vulnerabilities,
    );
    assert.equal(c.summary.high, 2);
    assert.equal(c.policy.passed, false);
    const { violations, ...rest } = c.policy;
    const { violations: own, ...ownRest } = one.policy;
    assert.deepEqual(rest, ownRest);
    assert.equal(violations.length, own.length);
    assert.deepEqual(
      c.policy.violations.map((v) => [v.id, v.platform]),
      one.policy.violations.map((v) => [v.id, 'linux/amd64']),
    );
  });

  it('merges secrets by rule, file and line', () => {
    const c = combineFindings([
      platform('linux/amd64', [], [secret('aws-access-key-id', 'root/.aws/credentials', 2)]),
      platform(
        'linux/arm64',
        [],
        [secret('aws-access-key-id', 'root/.aws/credentials', 2), secret('aws-access-key-id', 'root/.aws/credentials', 3)],
      ),
    ]);
    assert.deepEqual(
      c.secrets.map((s) => [s.line, s.platforms]),
      [
        [2, ['linux/amd64', 'linux/arm64']],
        [3, ['linux/arm64']],
      ],
    );
  });

  it('fails the gate when one platform fails, naming it; merges allow-list entries', () => {
    const policy = { max_high: 0, allow: [{ id: 'CVE-2019-9923', reason: 'both' }] };
    const c = combineFindings([
      platform('linux/amd64', [apt, tarAmd], [], policy),
      platform('linux/arm64', [apt, tarArm, lodash], [], policy),
    ]);
    assert.equal(c.policy.passed, false);
    assert.deepEqual(c.policy.violations, [
      { id: 'CVE-2021-23337', package: 'lodash', severity: 'HIGH', rule: 'max_high=0', platform: 'linux/arm64' },
    ]);
    assert.deepEqual(c.policy.allowed, [{ id: 'CVE-2019-9923', reason: 'both', expires: null }]);
    assert.equal(c.policy.limits.max_high, 0);
    const passing = combineFindings([
      platform('linux/amd64', [apt, tarAmd], [], policy),
      platform('linux/arm64', [apt, tarArm], [], policy),
    ]);
    assert.equal(passing.policy.passed, true);
  });

  it('names two violations when the same CVE breaks the gate on two platforms', () => {
    const c = combineFindings([platform('linux/amd64', [lodash]), platform('linux/arm64', [lodash])]);
    assert.deepEqual(
      c.policy.violations.map((v) => v.platform),
      ['linux/amd64', 'linux/arm64'],
    );
    assert.equal(c.vulnerabilities.length, 1);
  });
});

describe('scan artifact names', () => {
  const NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;
  it('keeps the plain names for one platform and names each of several after it', () => {
    assert.deepEqual(scanArtifactNames(['linux/amd64']), [
      { report: 'trivy-report.json', sbom: 'sbom.cdx.json', sarif: 'report.sarif.json' },
    ]);
    assert.deepEqual(scanArtifactNames(['linux/amd64', 'linux/arm/v7'])[1], {
      report: 'trivy-report.linux-arm-v7.json',
      sbom: 'sbom.cdx.linux-arm-v7.json',
      sarif: 'report.sarif.linux-arm-v7.json',
    });
  });
  it('keeps registry-supplied platform strings inside the artifact name pattern, without clashes', () => {
    const names = scanArtifactNames(['linux/amd64', 'Linux/AMD64', '../../etc', 'x'.repeat(60), '///']);
    const all = names.flatMap((n) => [n.report, n.sbom, n.sarif]);
    for (const name of all) assert.match(name, NAME);
    assert.equal(new Set(all).size, all.length);
    assert.equal(names[1]!.report, 'trivy-report.platform-2.json');
  });
  it('gives each report its media type, per platform too', () => {
    assert.equal(artifactMediaType('trivy-report.linux-arm64.json'), 'application/json');
    assert.equal(artifactMediaType('report.sarif.linux-arm64.json'), 'application/sarif+json');
    assert.equal(artifactMediaType('sbom.cdx.linux-arm64.json'), 'application/vnd.cyclonedx+json');
    assert.equal(artifactMediaType('sbom.cdx.json'), 'application/vnd.cyclonedx+json');
    assert.equal(artifactMediaType('notes.txt'), 'application/octet-stream');
  });
});

describe("a scan request's platform", () => {
  const parse = (platform: string) => parseJobRequest({ action: 'scan', image: 'debian', platform });
  it('takes all or one os/arch[/variant]', () => {
    for (const p of ['all', 'linux/arm64', 'linux/arm/v7']) assert.equal((parse(p) as { platform?: string }).platform, p);
  });
  it('refuses anything else, all/… included', () => {
    for (const p of ['-x', 'all/extra', 'ALL', 'linux', '']) {
      assert.throws(
        () => parse(p),
        (e: unknown) => e instanceof AppError && e.kind === 'invalid' && JSON.stringify(e.details).includes('platform'),
        p,
      );
    }
  });
  it('comes through gRPC as all', () => {
    assert.deepEqual(submitToBody({ action: 'scan', scan: { image: 'debian', platform: 'all' } }), {
      action: 'scan',
      image: 'debian',
      platform: 'all',
    });
  });
});
