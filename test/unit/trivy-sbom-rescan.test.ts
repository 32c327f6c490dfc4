import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { ProcessRunner, RunOptions } from '../../src/engines/process-runner.js';
import { ScannerUnavailableError, TrivyClient, type TrivySettings } from '../../src/engines/trivy/trivy-client.js';
import { asImageReport, normalizeReport, type TrivyReport } from '../../src/engines/trivy/trivy-report.js';
import type { VulnerabilityException } from '../../src/exceptions/exception-store.js';
import { sbomPurls, scanVexDocument } from '../../src/exceptions/openvex.js';
import { tempDir } from '../support/temp-dir.js';

/** A cache dir holding a DB TrivyDb accepts (metadata.json of schema 2 beside a trivy.db). */
function cacheWithDb(): string {
  const dir = tempDir('stv-argv-');
  mkdirSync(join(dir, 'db'));
  writeFileSync(join(dir, 'db', 'trivy.db'), Buffer.alloc(4096));
  writeFileSync(
    join(dir, 'db', 'metadata.json'),
    JSON.stringify({
      Version: 2,
      NextUpdate: '2999-01-01T00:00:00Z',
      UpdatedAt: '2026-11-01T00:00:00Z',
      DownloadedAt: '2026-11-01T00:00:00Z',
    }),
  );
  return dir;
}

function client(settings: Partial<TrivySettings> = {}) {
  const calls: { command: string; args: readonly string[]; options?: RunOptions }[] = [];
  const runner: ProcessRunner = {
    run: async (command, args, options) => {
      calls.push({ command, args, options });
      return { stdout: '', stderr: '', durationMs: 1 };
    },
  };
  const trivy = new TrivyClient(runner, {
    trivy: '/bin/trivy',
    cacheDir: cacheWithDb(),
    dbUpdate: false,
    insecureRegistries: [],
    ...settings,
  });
  return { trivy, calls };
}

describe('TrivyClient.scanSbom argv (the rescan from a stored SBOM)', () => {
  it('scanSbom: the sbom command with the offline and report flags of an image scan, vuln only, no check flag', async () => {
    const { trivy, calls } = client();
    await trivy.scanSbom('/a/sbom.cdx.json', '/a/report.json');
    const [call] = calls;
    assert.equal(call!.command, '/bin/trivy');
    const args = call!.args;
    assert.equal(args[0], 'sbom');
    assert.deepEqual(args.slice(-2), ['--', '/a/sbom.cdx.json'], 'the SBOM is the one positional, after --');
    for (const flag of [
      '--quiet',
      '--no-progress',
      '--skip-db-update',
      '--offline-scan',
      '--skip-java-db-update',
      '--skip-version-check',
      '--disable-telemetry',
      '--list-all-pkgs',
    ])
      assert.ok(args.includes(flag), `${flag} in ${args.join(' ')}`);
    const value = (flag: string) => args[args.indexOf(flag) + 1];
    assert.equal(value('--scanners'), 'vuln');
    assert.equal(value('--format'), 'json');
    assert.equal(value('--output'), '/a/report.json');
    assert.equal(value('--cache-backend'), 'memory');
    assert.match(value('--cache-dir')!, /stv-argv-/);
    // Flags the sbom command refuses ("unknown flag") or that only mean something for images.
    for (const flag of ['--skip-check-update', '--image-src', '--platform', '--insecure', '--server', '--vex'])
      assert.ok(!args.includes(flag), `no ${flag}`);
  });

  it('scanSbom: severity, ignore-unfixed and VEX as for an image scan; the server by flag, its token by environment', async () => {
    const { trivy, calls } = client({ serverUrl: 'http://127.0.0.1:4954', serverToken: 's3cret-token' });
    await trivy.scanSbom('/a/sbom.cdx.json', '/a/report.json', {
      severity: ['HIGH', 'CRITICAL'],
      ignoreUnfixed: true,
      vexFile: '/a/vex.openvex.json',
    });
    const args = calls[0]!.args;
    const value = (flag: string) => args[args.indexOf(flag) + 1];
    assert.equal(value('--severity'), 'HIGH,CRITICAL');
    assert.ok(args.includes('--ignore-unfixed'));
    assert.equal(value('--vex'), '/a/vex.openvex.json');
    assert.ok(args.includes('--show-suppressed'), 'what VEX set aside stays in the report');
    assert.equal(value('--server'), 'http://127.0.0.1:4954');
    assert.ok(!args.join(' ').includes('s3cret-token'), 'the token is never in argv');
    assert.equal(calls[0]!.options?.env?.TRIVY_TOKEN, 's3cret-token');
  });

  it('scanSbom and scanImage share the DB flags: with updates on, both name the DB repositories instead', async () => {
    const { trivy, calls } = client({ dbUpdate: true, dbRepositories: ['127.0.0.1:5000/aquasec/trivy-db:2'] });
    await trivy.scanSbom('/a/sbom.cdx.json', '/a/r1.json');
    await trivy.scanImage('127.0.0.1:5000/team/app@sha256:' + 'a'.repeat(64), '/a/r2.json', { scanners: ['vuln', 'secret'] });
    const [sbom, image] = calls.map((c) => c.args);
    for (const args of [sbom!, image!]) {
      assert.ok(!args.includes('--skip-db-update') && !args.includes('--offline-scan'));
      assert.equal(args[args.indexOf('--db-repository') + 1], '127.0.0.1:5000/aquasec/trivy-db:2');
    }
    assert.equal(image![0], 'image');
    assert.ok(image!.includes('--skip-check-update'), 'the image command keeps it');
    assert.equal(image![image!.indexOf('--scanners') + 1], 'vuln,secret');
  });

  it('scanSbom without a DB is the scanner being unavailable, and Trivy never runs', async () => {
    const runner: ProcessRunner = { run: async () => assert.fail('trivy must not run') };
    const empty = tempDir('stv-argv-empty-');
    const trivy = new TrivyClient(runner, { trivy: '/bin/trivy', cacheDir: empty, dbUpdate: false, insecureRegistries: [] });
    await assert.rejects(trivy.scanSbom('/a/sbom.cdx.json', '/a/report.json'), ScannerUnavailableError);
  });
});

describe('asImageReport: a trivy sbom report read as the image scan it stands for', () => {
  const sbomFile = '/var/lib/stevedore/artifacts/job-1/sbom.cdx.json';
  const reference = '127.0.0.1:5000/team/app@sha256:' + 'b'.repeat(64);
  const finding = { VulnerabilityID: 'CVE-2011-3374', PkgName: 'apt', InstalledVersion: '2.6.1', Severity: 'LOW' };
  const report: TrivyReport = {
    ArtifactName: sbomFile,
    Results: [
      { Target: `${sbomFile} (debian 12.15)`, Class: 'os-pkgs', Vulnerabilities: [finding] },
      { Target: 'Node.js', Class: 'lang-pkgs', Vulnerabilities: [{ ...finding, PkgName: 'lodash' }] },
      { Target: `${sbomFile}.other (debian 12.15)`, Class: 'os-pkgs' },
    ],
  };

  it('names the image where Trivy named the SBOM file, and nothing else changes', () => {
    const out = asImageReport(report, sbomFile, reference);
    assert.equal(out.ArtifactName, reference);
    assert.deepEqual(
      out.Results!.map((r) => r.Target),
      [`${reference} (debian 12.15)`, 'Node.js', `${sbomFile}.other (debian 12.15)`],
      'only the file itself, never a longer name that starts with it',
    );
    assert.deepEqual(out.Results![0]!.Vulnerabilities, [finding]);
    assert.equal(report.ArtifactName, sbomFile, 'the input is left as it was');
    const targets = normalizeReport(out).vulnerabilities.map((v) => v.target);
    assert.ok(!targets.some((t) => t.includes('/var/lib/stevedore')), 'no server path reaches the findings');
  });

  it('leaves a report without ArtifactName or Results as it is', () => {
    assert.deepEqual(asImageReport({}, sbomFile, reference), {});
  });
});

describe('the VEX document of a rescan from the stored SBOM', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const exception: VulnerabilityException = {
    id: 'exc-1',
    vulnerability_id: 'CVE-2021-23337',
    scope: { repository: 'team/*' },
    reason: 'not reachable',
    owner: 'alice',
    expires: '2099-01-01T00:00:00Z',
    created_at: '2026-11-01T00:00:00Z',
    source: 'api',
  };
  const sbom = {
    metadata: { component: { purl: `pkg:oci/app@${digest}` } },
    components: [
      { type: 'operating-system', name: 'debian', version: '12.15' },
      { type: 'library', name: 'bash', purl: 'pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12.15' },
      { type: 'application', name: 'Node.js', components: [{ name: 'lodash', purl: 'pkg:npm/lodash@4.17.20' }] },
      { type: 'library', name: 'bash again', purl: 'pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12.15' },
      { name: 'not a purl', purl: 'urn:x' },
    ],
  };

  it("sbomPurls: every package purl of the SBOM's components, nested ones too, once", () => {
    assert.deepEqual(sbomPurls(sbom), ['pkg:deb/debian/bash@5.2.15-2%2Bb13?arch=amd64&distro=debian-12.15', 'pkg:npm/lodash@4.17.20']);
    for (const bad of [null, {}, { components: 'x' }, { components: [null, 1] }]) assert.deepEqual(sbomPurls(bad), []);
  });

  it('scanVexDocument names the image first, then each package; without packages, the image alone (as before)', () => {
    const withPackages = scanVexDocument({ repository: 'team/App', manifestDigest: digest, packages: sbomPurls(sbom) }, [exception]);
    assert.deepEqual(
      withPackages.statements[0]!.products.map((p) => p['@id']),
      [`pkg:oci/app@sha256%3A${'c'.repeat(64)}`, ...sbomPurls(sbom)],
    );
    const imageOnly = scanVexDocument({ repository: 'team/App', manifestDigest: digest }, [exception]);
    assert.deepEqual(imageOnly.statements[0]!.products, [{ '@id': `pkg:oci/app@sha256%3A${'c'.repeat(64)}` }]);
  });
});
