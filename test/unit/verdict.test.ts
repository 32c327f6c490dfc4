import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ImageRecord, LatestScan } from '../../src/catalogue/catalogue-record.js';
import { judgeImage, repositoryPaths, scanReports, type PlatformReport } from '../../src/catalogue/image-verdict.js';
import { DEFAULT_REPORT_LIMITS, ReportReader, ReportUnavailableError } from '../../src/catalogue/report-reader.js';
import { verdictFacts, type VerdictFacts } from '../../src/catalogue/verdict-facts.js';
import { VerdictService } from '../../src/catalogue/verdict-service.js';
import { AppError } from '../../src/errors/app-error.js';
import type { VulnerabilityException } from '../../src/exceptions/exception-store.js';
import { ArtifactStore } from '../../src/jobs/artifact-store.js';
import type { PolicyFinding } from '../../src/policies/evaluate-named-policy.js';
import type { NamedPolicyRules, PolicySnapshot } from '../../src/policies/policy.schema.js';
import { finding as aFinding } from '../support/findings.js';
import { tempDir } from '../support/temp-dir.js';

const NOW = new Date('2026-12-03T12:00:00Z');
const hoursAgo = (n: number) => new Date(NOW.getTime() - n * 3_600_000).toISOString();
const TOP = `sha256:${'a'.repeat(64)}`;
const AMD = `sha256:${'b'.repeat(64)}`;
const ARM = `sha256:${'c'.repeat(64)}`;
const JOB = '00000000-0000-4000-8000-000000000001';

const policy = (rules: NamedPolicyRules): PolicySnapshot => ({ name: 'prod', version: 4, updated_at: hoursAgo(1), rules });
const finding = (id: string, pkg: string, severity: PolicyFinding['severity'], fixed: string | null = null): PolicyFinding => ({
  ...aFinding(id, pkg, '1.0', severity, fixed, { target: '' }),
  published_date: null,
});
const facts = (manifest: string, findings: PolicyFinding[], packages = [{ name: 'zlib1g', version: '1:1.2.13' }]): VerdictFacts => ({
  findings,
  packages,
  manifest_digest: manifest,
});
const scan = (over: Partial<LatestScan> = {}): LatestScan => ({
  job_id: JOB,
  scanned_at: hoursAgo(2),
  db_updated_at: '2026-12-01T00:00:00Z',
  summary: { critical: 1, high: 0, medium: 0, low: 1, unknown: 0, fixable: 0 },
  policy: { passed: false, violations: 1 },
  platforms: ['linux/amd64', 'linux/arm64'],
  reports: ['trivy-report.linux-amd64.json', 'trivy-report.linux-arm64.json', 'report.sarif.linux-amd64.json'],
  ...over,
});
const record = (latest: LatestScan | null = scan()) => ({
  repository: 'registry.test:5000/team/app',
  repositories: ['registry.test:5000/team/app', 'mirror.test/prod/app'],
  platforms: ['linux/amd64', 'linux/arm64', 'linux/riscv64'],
  latest_scan: latest,
});
const exception = (vulnerability_id: string, scope: VulnerabilityException['scope'], id = 'e1'): VulnerabilityException => ({
  id,
  vulnerability_id,
  scope,
  reason: 'not reachable',
  owner: 'alice@example.com',
  expires: hoursAgo(-24),
  created_at: hoursAgo(3),
  source: 'api',
});
const zlib = finding('CVE-2023-45853', 'zlib1g', 'CRITICAL');
const apt = finding('CVE-2011-3374', 'apt', 'LOW');
const reports = (): PlatformReport[] => [
  { platform: 'linux/amd64', report: 'trivy-report.linux-amd64.json', facts: facts(AMD, [zlib, apt]) },
  { platform: 'linux/arm64', report: 'trivy-report.linux-arm64.json', facts: facts(ARM, [zlib]) },
];
const judge = (rules: NamedPolicyRules, over: Partial<Parameters<typeof judgeImage>[0]> = {}) =>
  judgeImage({ digest: TOP, record: record(), policy: policy(rules), reports: reports(), exceptions: [], now: NOW, ...over });

describe('verdictFacts', () => {
  it("keeps what a policy judges: findings with their PublishedDate, VEX'd ones too, packages and the scanned manifest", () => {
    const report = {
      ArtifactName: `registry.test:5000/team/app@${AMD}`,
      Results: [
        {
          Target: 'debian 12',
          Class: 'os-pkgs',
          Packages: [
            { Name: 'zlib1g', Version: '1.2.13', Release: 'dfsg-1', Epoch: 1 },
            { Name: 'apt', Version: '2.6.1' },
          ],
          Vulnerabilities: [
            {
              VulnerabilityID: 'CVE-2023-45853',
              PkgName: 'zlib1g',
              InstalledVersion: '1:1.2.13.dfsg-1',
              Severity: 'CRITICAL',
              Title: 'a long title',
              Description: 'x'.repeat(5000),
              PublishedDate: '2023-10-14T02:15:09.323Z',
            },
          ],
          ExperimentalModifiedFindings: [
            {
              Type: 'vulnerability',
              Status: 'not_affected',
              Source: '/state/vex.openvex.json',
              Finding: { VulnerabilityID: 'CVE-2011-3374', PkgName: 'apt', Severity: 'LOW' },
            },
          ],
        },
      ],
    };
    const f = verdictFacts(report);
    assert.equal(f.manifest_digest, AMD);
    assert.deepEqual(
      f.packages.map((p) => `${p.name}@${p.version}`),
      ['zlib1g@1:1.2.13-dfsg-1', 'apt@2.6.1'],
    );
    assert.deepEqual(
      f.findings.map((x) => [x.id, x.severity, x.published_date, x.title, x.vex?.status ?? null]),
      [
        ['CVE-2023-45853', 'CRITICAL', '2023-10-14T02:15:09.323Z', '', null],
        ['CVE-2011-3374', 'LOW', null, '', 'not_affected'],
      ],
    );
    assert.equal(verdictFacts({ Metadata: { RepoDigests: [`r.test/a@${ARM}`] } }).manifest_digest, ARM);
    assert.deepEqual(verdictFacts(null), { findings: [], packages: [], manifest_digest: null });
  });
});

describe('scanReports and repositoryPaths', () => {
  it("names each platform's report as the scan stage does, and says whether the scan recorded it", () => {
    assert.deepEqual(scanReports(scan(), []), [
      { platform: 'linux/amd64', report: 'trivy-report.linux-amd64.json', listed: true },
      { platform: 'linux/arm64', report: 'trivy-report.linux-arm64.json', listed: true },
    ]);
    assert.deepEqual(scanReports(scan({ platforms: ['linux/arm64'], reports: ['trivy-report.json'] }), []), [
      { platform: 'linux/arm64', report: 'trivy-report.json', listed: true },
    ]);
    assert.deepEqual(scanReports(scan({ platforms: [], reports: [] }), ['linux/s390x']), [
      { platform: 'linux/s390x', report: 'trivy-report.json', listed: false },
    ]);
  });

  it('matches exceptions on repository paths without their registry', () => {
    assert.deepEqual(repositoryPaths(record(), ['localhost:5000/team/app', 'other.test/x/y']), ['team/app', 'prod/app', 'x/y']);
    assert.deepEqual(repositoryPaths(undefined), []);
  });
});

describe('judgeImage', () => {
  it('judges each platform the latest scan covered and names the platform of each violation', () => {
    const v = judge({ max_critical: 0, max_low: 5 });
    assert.equal(v.passed, false);
    assert.deepEqual(v.policy, { name: 'prod', version: 4 });
    assert.deepEqual(v.rules_failed, ['max_critical']);
    assert.deepEqual(
      v.violations.map((x) => [x.platform, x.id, x.rule]),
      [
        ['linux/amd64', 'CVE-2023-45853', 'max_critical=0'],
        ['linux/arm64', 'CVE-2023-45853', 'max_critical=0'],
      ],
    );
    assert.deepEqual(
      v.platforms.map((p) => [p.platform, p.manifest_digest, p.report, p.passed]),
      [
        ['linux/amd64', AMD, 'trivy-report.linux-amd64.json', false],
        ['linux/arm64', ARM, 'trivy-report.linux-arm64.json', false],
      ],
    );
    assert.deepEqual([v.scan_job_id, v.scanned_at, v.scan_age_seconds, v.evaluated_at], [JOB, hoursAgo(2), 7200, NOW.toISOString()]);
    assert.deepEqual(v.unscanned_platforms, ['linux/riscv64']);
    assert.equal(v.limits.max_critical, 0);
    assert.equal(judge({ only_fixable: true, max_critical: 0 }).passed, true, 'the CRITICAL has no fix');
  });

  it('applies the exceptions whose scope covers the image, and says which exception allowed which finding', () => {
    // A repository glob matching any repository the digest was seen in (here the copy's, on another registry).
    const byRepo = judge({ max_critical: 0 }, { exceptions: [exception('CVE-2023-45853', { repository: 'prod/*' }, 'e-prod')] });
    assert.equal(byRepo.passed, true, JSON.stringify(byRepo.violations));
    assert.deepEqual(byRepo.allowed, [
      { id: 'CVE-2023-45853', reason: 'not reachable', expires: hoursAgo(-24), exception_id: 'e-prod', owner: 'alice@example.com' },
    ]);
    assert.equal(byRepo.platforms[1]!.allowed[0]!.exception_id, 'e-prod');

    assert.equal(judge({ max_critical: 0 }, { exceptions: [exception('CVE-2023-45853', { repository: 'other/*' })] }).passed, false);
    // A job's own repository counts beside the record's.
    const own = judge(
      { max_critical: 0 },
      { exceptions: [exception('CVE-2023-45853', { repository: 'other/*' })], repositories: ['r.test/other/app'] },
    );
    assert.equal(own.passed, true);

    // Scoped to the arm64 manifest: only that platform is excused.
    const byManifest = judge({ max_critical: 0 }, { exceptions: [exception('CVE-2023-45853', { digest: ARM })] });
    assert.deepEqual(
      byManifest.platforms.map((p) => p.passed),
      [false, true],
    );
    assert.equal(byManifest.passed, false);
    const byIndex = judge({ max_critical: 0 }, { exceptions: [exception('CVE-2023-45853', { digest: TOP })] });
    assert.equal(byIndex.passed, true);
  });

  it('fails a scan older than max_scan_age, and passes a fresh one', () => {
    const stale = judge({ max_scan_age: '1h' });
    assert.equal(stale.passed, false);
    assert.deepEqual(stale.rules_failed, ['max_scan_age']);
    assert.match(stale.violations[0]!.detail!, /2 h old/);
    assert.equal(judge({ max_scan_age: '3h' }).passed, true);
  });

  it('answers a digest never scanned with passed false and the rule no_scan (and max_scan_age when the policy has it)', () => {
    for (const rec of [undefined, record(null)]) {
      const v = judge({ max_critical: 0, max_scan_age: '7d' }, { record: rec, reports: [] });
      assert.equal(v.passed, false);
      assert.deepEqual(v.rules_failed, ['no_scan', 'max_scan_age']);
      assert.deepEqual(
        v.violations.map((x) => [x.id, x.platform]),
        [
          ['no_scan', null],
          ['max_scan_age', null],
        ],
      );
      assert.deepEqual([v.scanned_at, v.scan_age_seconds, v.platforms], [null, null, []]);
    }
    assert.deepEqual(judge({}, { record: undefined, reports: [] }).rules_failed, ['no_scan'], 'even a policy with no rules');
  });

  it('answers a platform whose report is gone with scan_unavailable: the verdict cannot pass on what it cannot read', () => {
    const gone = reports();
    gone[1] = { platform: 'linux/arm64', report: 'trivy-report.linux-arm64.json', unavailable: 'gone (past the job retention?)' };
    const v = judge({ only_fixable: true }, { reports: gone });
    assert.equal(v.passed, false);
    assert.deepEqual(v.rules_failed, ['scan_unavailable']);
    assert.equal(v.platforms[0]!.passed, true);
    assert.equal(v.platforms[1]!.manifest_digest, null);
    assert.match(v.violations[0]!.detail!, new RegExp(`trivy-report.linux-arm64.json of scan job ${JOB}: gone`));
    assert.equal(judge({}, { reports: [] }).passed, false, 'no platform judged is no pass');
  });
});

/** A Trivy report file as the scan stage leaves it. */
function writeReport(dir: string, name: string, manifest: string, severity = 'CRITICAL', pad = 0): string {
  const path = join(dir, name);
  writeFileSync(
    path,
    JSON.stringify({
      ArtifactName: `registry.test:5000/team/app@${manifest}`,
      Results: [
        {
          Target: 'debian 12',
          Class: 'os-pkgs',
          Packages: [{ Name: 'zlib1g', Version: '1.2.13' }],
          Vulnerabilities: [{ VulnerabilityID: 'CVE-2023-45853', PkgName: 'zlib1g', InstalledVersion: '1.2.13', Severity: severity }],
          Padding: 'x'.repeat(pad),
        },
      ],
    }),
  );
  return path;
}

describe('ReportReader', () => {
  it('parses a report once, shares concurrent first reads, and notices a replaced or removed file', async () => {
    const dir = tempDir('stv-verdict-');
    const reader = new ReportReader();
    const path = writeReport(dir, 'trivy-report.json', AMD);
    const [a, b] = await Promise.all([reader.read(path), reader.read(path)]);
    assert.equal(a, b);
    assert.equal(reader.parsed, 1);
    assert.equal(await reader.read(path), a, 'from the cache');
    assert.equal(reader.parsed, 1);
    assert.equal(a.manifest_digest, AMD);

    writeReport(dir, 'trivy-report.json', AMD, 'LOW', 10);
    assert.equal((await reader.read(path)).findings[0]!.severity, 'LOW', 'another size: read again');
    await assert.rejects(
      reader.read(join(dir, 'nope.json')),
      (err: Error) => err instanceof ReportUnavailableError && /gone/.test(err.message),
    );
    writeFileSync(join(dir, 'bad.json'), '{"Results": [');
    await assert.rejects(reader.read(join(dir, 'bad.json')), ReportUnavailableError);
  });

  it('refuses a report over the size limit, and parses large ones on its thread', async () => {
    const dir = tempDir('stv-verdict-');
    const reader = new ReportReader({ ...DEFAULT_REPORT_LIMITS, inlineMaxBytes: 1024, maxBytes: 64 * 1024 });
    try {
      const big = writeReport(dir, 'big.json', ARM, 'HIGH', 8 * 1024);
      const onThread = await reader.read(big);
      assert.deepEqual(
        [onThread.manifest_digest, onThread.findings[0]!.severity, onThread.packages],
        [ARM, 'HIGH', [{ name: 'zlib1g', version: '1.2.13' }]],
      );
      writeFileSync(join(dir, 'broken.json'), `{${' '.repeat(4096)}`);
      await assert.rejects(reader.read(join(dir, 'broken.json')), ReportUnavailableError);
      assert.equal((await reader.read(big)).manifest_digest, ARM, 'the thread survives a bad report');
      const huge = writeReport(dir, 'huge.json', ARM, 'HIGH', 70 * 1024);
      await assert.rejects(
        reader.read(huge),
        (err: Error) => err instanceof ReportUnavailableError && /over the 65536-byte limit/.test(err.message),
      );
    } finally {
      await reader.close();
    }
  });
});

describe('VerdictService', () => {
  const root = tempDir('stv-verdict-art-');
  const artifacts = new ArtifactStore(root);
  const stored = { name: 'prod', version: 2, created_at: hoursAgo(9), updated_at: hoursAgo(9), rules: { max_critical: 0 } };
  const single = scan({ platforms: ['linux/amd64'], reports: ['trivy-report.json', 'report.sarif.json'] });
  const full = (latest: LatestScan | null): ImageRecord => ({
    ...record(latest),
    digest: TOP,
    references: [],
    size_bytes: null,
    created: null,
    build_job: null,
    first_seen: hoursAgo(5),
    last_seen: hoursAgo(1),
    signatures: [],
    attestations: [],
    sbom: null,
  });
  const service = (records: Record<string, ImageRecord>, exceptions: VulnerabilityException[] = []) =>
    new VerdictService({
      catalogue: { get: async (tenant, digest) => records[`${tenant}/${digest}`] },
      policies: { get: async (tenant, name) => (tenant === 't1' && name === 'prod' ? stored : undefined) },
      exceptions: { active: async (tenant) => (tenant === 't1' ? exceptions : []) },
      artifacts,
      reports: new ReportReader(),
      clock: () => NOW,
    });
  const code = async (p: Promise<unknown>) => {
    const err = await p.then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError, String(err));
    return [err.kind, err.code];
  };

  it('answers from the record, the stored policy, the exceptions and the report; 404 for an unknown digest or policy', async () => {
    mkdirSync(artifacts.dir(JOB), { recursive: true });
    writeReport(artifacts.dir(JOB), 'trivy-report.json', AMD);
    const verdicts = service({ [`t1/${TOP}`]: full(single) });
    const v = await verdicts.byName('t1', TOP, 'prod');
    assert.deepEqual([v.passed, v.rules_failed, v.policy], [false, ['max_critical'], { name: 'prod', version: 2 }]);
    assert.deepEqual(await code(verdicts.byName('t2', TOP, 'prod')), ['not_found', 'IMAGE_NOT_FOUND'], "another tenant's digest");
    assert.deepEqual(await code(verdicts.byName('t1', ARM, 'prod')), ['not_found', 'IMAGE_NOT_FOUND']);
    assert.deepEqual(await code(verdicts.byName('t1', TOP, 'nope')), ['not_found', 'POLICY_NOT_FOUND']);

    const excused = service({ [`t1/${TOP}`]: full(single) }, [exception('CVE-2023-45853', { repository: 'team/app' }, 'e9')]);
    const passed = await excused.byName('t1', TOP, 'prod');
    assert.equal(passed.passed, true);
    assert.equal(passed.allowed[0]!.exception_id, 'e9');
  });

  it('judges a sign or push snapshot: an uncatalogued digest as never scanned, missing reports as unavailable', async () => {
    const verdicts = service({
      [`t1/${TOP}`]: full(
        scan({ job_id: '00000000-0000-4000-8000-0000000000ff', platforms: ['linux/amd64'], reports: ['trivy-report.json'] }),
      ),
      [`t1/${ARM}`]: full(scan({ job_id: '../../etc', platforms: ['linux/amd64'], reports: ['trivy-report.json'] })),
    });
    const snapshot = policy({ max_scan_age: '1d' });
    assert.deepEqual((await verdicts.judge('t1', AMD, snapshot)).rules_failed, ['no_scan', 'max_scan_age']);
    const gone = await verdicts.judge('t1', TOP, snapshot);
    assert.deepEqual([gone.passed, gone.rules_failed], [false, ['scan_unavailable']]);
    const damaged = await verdicts.judge('t1', ARM, snapshot);
    assert.match(damaged.violations[0]!.detail!, /no such job/);
  });
});
