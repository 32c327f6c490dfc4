import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { comparedPlatforms, findingsDiff, likeScan, packagesDiff } from '../../src/analysis/vulnerabilities/build-diff.js';
import type { ImageRecord, LatestScan, TagBuild } from '../../src/catalogue/catalogue-record.js';
import type { Vulnerability } from '../../src/engines/trivy/trivy-report.js';
import { ArtifactStore } from '../../src/jobs/artifact-store.js';
import { diffAgainstPreviousBuilds, diffForBuildResult, MAX_DIFFS, type BuiltImage } from '../../src/workers/build-diff-stage.js';
import { finding } from '../support/findings.js';
import { tempDir } from '../support/temp-dir.js';

const vuln = finding;
const pkg = (name: string, version: string, type = 'deb') => ({ name, version, type });
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

describe('build diff: the pure parts', () => {
  it('compares the first platform both builds have, else the default platform of each', () => {
    assert.deepEqual(comparedPlatforms(['linux/amd64', 'linux/arm64'], ['linux/arm64', 'linux/amd64']), {
      current: 'linux/amd64',
      previous: 'linux/amd64',
    });
    assert.deepEqual(comparedPlatforms(['linux/arm64', 'linux/s390x'], ['linux/s390x']), {
      current: 'linux/s390x',
      previous: 'linux/s390x',
    });
    assert.deepEqual(comparedPlatforms(['linux/amd64'], ['linux/arm64', 'linux/riscv64']), {
      current: 'linux/amd64',
      previous: 'linux/arm64',
    });
    assert.equal(comparedPlatforms([], ['linux/amd64']), undefined);
    assert.equal(comparedPlatforms(['linux/amd64'], []), undefined);
  });

  it('packages: added, removed and changed with their full counts; each list capped, truncated said', () => {
    const d = packagesDiff(
      [pkg('tar', '1.34'), pkg('apt', '2.6.1'), pkg('lodash', '4.17.21', 'npm')],
      [pkg('apt', '2.6.1'), pkg('lodash', '4.17.20', 'npm'), pkg('curl', '7.88')],
    );
    assert.deepEqual(d, {
      added: [pkg('curl', '7.88')],
      removed: [pkg('tar', '1.34')],
      changed: [{ name: 'lodash', type: 'npm', from: '4.17.21', to: '4.17.20' }],
      counts: { added: 1, removed: 1, changed: 1 },
      truncated: false,
    });
    const many = Array.from({ length: 7 }, (_, i) => pkg(`p${i}`, '1'));
    const capped = packagesDiff([pkg('old', '1')], many, 5);
    assert.equal(capped.added.length, 5);
    assert.equal(capped.counts.added, 7);
    assert.deepEqual(capped.removed, [pkg('old', '1')]);
    assert.equal(capped.truncated, true);
    assert.equal(packagesDiff([], many, 7).truncated, false, 'exactly the cap is not truncated');
  });

  it("findings: introduced, resolved, re-rated; the previous findings pass this scan's filter first", () => {
    const previous = [
      vuln('CVE-A', 'tar', '1.34', 'LOW', '1.35'),
      vuln('CVE-B', 'apt', '2.6', 'LOW'),
      vuln('CVE-C', 'zlib', '1.2', 'HIGH'),
    ];
    const current = [vuln('CVE-C', 'zlib', '1.2', 'CRITICAL'), vuln('CVE-D', 'lodash', '4.17.20', 'HIGH', '4.17.21')];
    const db = { previous: '2026-11-01T00:00:00Z', current: '2026-11-02T00:00:00Z' };
    const d = findingsDiff(previous, current, { filter: {}, db_updated_at: db });
    assert.deepEqual(
      d.introduced.map((f) => f.id),
      ['CVE-D'],
    );
    assert.deepEqual(
      d.resolved.map((f) => f.id),
      ['CVE-A', 'CVE-B'],
    );
    assert.deepEqual(
      d.severity_changed.map((f) => [f.id, f.previous_severity, f.severity]),
      [['CVE-C', 'HIGH', 'CRITICAL']],
    );
    assert.deepEqual(d.counts, { introduced: 1, resolved: 2, severity_changed: 1 });
    assert.deepEqual(d.db_updated_at, db);
    // This build scanned fixable findings only: the previous unfixed ones are not "resolved".
    const fixable = findingsDiff(previous, [vuln('CVE-A', 'tar', '1.34', 'LOW', '1.35')], {
      filter: { ignore_unfixed: true },
      db_updated_at: db,
    });
    assert.deepEqual(fixable.resolved, []);
    assert.deepEqual(fixable.introduced, []);
    assert.deepEqual(
      likeScan(previous, { severity: ['HIGH', 'CRITICAL'] }).map((v) => v.id),
      ['CVE-C'],
    );
    const capped = findingsDiff(
      [],
      Array.from({ length: 3 }, (_, i) => vuln(`CVE-${i}`, 'x', '1', 'LOW')),
      { filter: {}, db_updated_at: db },
      2,
    );
    assert.equal(capped.introduced.length, 2);
    assert.equal(capped.counts.introduced, 3);
    assert.equal(capped.truncated, true);
  });
});

/** A catalogue that holds what the test says, per tenant, and counts its lookups. */
function fakeCatalogue(builds: Record<string, TagBuild>, records: Record<string, ImageRecord>) {
  const lookups: string[] = [];
  return {
    lookups,
    lastBuild: async (tenant: string, tag: string) => {
      lookups.push(`${tenant}|${tag}`);
      return builds[`${tenant}|${tag}`];
    },
    get: async (tenant: string, d: string) => records[`${tenant}|${d}`],
  };
}

function record(d: string, over: Partial<ImageRecord> = {}): ImageRecord {
  return {
    digest: d,
    repository: 'r.example/t/app',
    repositories: ['r.example/t/app'],
    references: [],
    platforms: ['linux/amd64'],
    size_bytes: null,
    created: null,
    build_job: null,
    first_seen: '2026-11-01T00:00:00.000Z',
    last_seen: '2026-11-01T00:00:00.000Z',
    latest_scan: null,
    signatures: [],
    attestations: [],
    sbom: null,
    ...over,
  };
}

const sbom = (...components: { name: string; version: string; type: string }[]) => ({
  bomFormat: 'CycloneDX',
  components: components.map((c) => ({ name: c.name, version: c.version, purl: `pkg:${c.type}/x/${c.name}@${c.version}` })),
});
const report = (...vs: Vulnerability[]) => ({
  Results: [
    {
      Target: 'debian 12',
      Class: 'os-pkgs',
      Vulnerabilities: vs.map((v) => ({
        VulnerabilityID: v.id,
        PkgName: v.package,
        InstalledVersion: v.installed_version,
        FixedVersion: v.fixed_version ?? undefined,
        Severity: v.severity,
      })),
    },
  ],
});

async function artifacts() {
  const root = tempDir('stv-build-diff-');
  const store = new ArtifactStore(root);
  const put = async (job: string, name: string, value: unknown) => {
    await mkdir(store.dir(job), { recursive: true });
    await writeFile(join(store.dir(job), name), JSON.stringify(value));
  };
  return { store, put };
}

describe('build diff: against the previous build of each tag', () => {
  const tag = 'r.example/t/app:1';

  it('no previous build, or the same digest built again: no diff; only the tenant’s own builds are looked up', async () => {
    const { store } = await artifacts();
    const catalogue = fakeCatalogue({ [`a|${tag}`]: { reference: tag, digest: digest(1), build_job: randomUUID(), at: 'x' } }, {});
    const image: BuiltImage = { tenant: 'b', job_id: randomUUID(), digest: digest(2), tags: [tag], sboms: [] };
    assert.deepEqual(await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, image), []);
    assert.deepEqual(catalogue.lookups, [`b|${tag}`]);
    assert.deepEqual(await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, { ...image, tenant: 'a', digest: digest(1) }), []);
  });

  it('compares SBOMs and scan reports from the jobs’ artifacts; tags that pointed at one digest share an entry', async () => {
    const { store, put } = await artifacts();
    const [oldBuild, oldScan, job] = [randomUUID(), randomUUID(), randomUUID()];
    await put(oldBuild, 'sbom.cdx.json', sbom(pkg('tar', '1.34'), pkg('lodash', '4.17.21', 'npm')));
    await put(oldScan, 'trivy-report.json', report(vuln('CVE-2019-9923', 'tar', '1.34', 'HIGH', '1.35')));
    await put(job, 'sbom.cdx.json', sbom(pkg('lodash', '4.17.20', 'npm'), pkg('ms', '2.1.3', 'npm')));
    const scan: LatestScan = {
      job_id: oldScan,
      scanned_at: '2026-11-01T00:00:00.000Z',
      db_updated_at: '2026-11-01T00:00:00Z',
      summary: { critical: 0, high: 1, medium: 0, low: 0, unknown: 0, fixable: 1 },
      policy: { passed: true, violations: 0 },
      platforms: ['linux/amd64'],
      reports: ['report.sarif.json', 'trivy-report.json'],
    };
    const prev: TagBuild = { reference: tag, digest: digest(1), build_job: oldBuild, at: '2026-11-01T00:00:00.000Z' };
    const catalogue = fakeCatalogue(
      { [`a|${tag}`]: prev, [`a|r.example/t/app:latest`]: { ...prev, reference: 'r.example/t/app:latest' } },
      {
        [`a|${digest(1)}`]: record(digest(1), {
          latest_scan: scan,
          sbom: {
            job_id: oldBuild,
            artifact: 'sbom.cdx.json',
            platforms: [{ platform: 'linux/amd64', digest: digest(9), artifact: 'sbom.cdx.json' }],
            attached: false,
          },
        }),
      },
    );
    const lodash = { ...vuln('CVE-2021-23337', 'lodash', '4.17.20', 'HIGH', '4.17.21'), platforms: ['linux/amd64'] };
    const image: BuiltImage = {
      tenant: 'a',
      job_id: job,
      digest: digest(2),
      tags: [tag, 'r.example/t/app:latest'],
      sboms: [{ platform: 'linux/amd64', artifact: 'sbom.cdx.json' }],
      scan: {
        vulnerabilities: [lodash],
        platforms: ['linux/amd64'],
        db_updated_at: '2026-11-01T00:00:00Z',
        vulnerabilities_scanned: true,
        filter: {},
      },
    };
    const [diff, ...more] = await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, image);
    assert.equal(more.length, 0);
    assert.deepEqual(diff!.against, { tags: [tag, 'r.example/t/app:latest'], digest: digest(1), build_job: oldBuild, built_at: prev.at });
    assert.equal(diff!.platform, 'linux/amd64');
    assert.equal(diff!.previous_platform, undefined);
    assert.deepEqual(diff!.packages, {
      added: [pkg('ms', '2.1.3', 'npm')],
      removed: [pkg('tar', '1.34')],
      changed: [{ name: 'lodash', type: 'npm', from: '4.17.21', to: '4.17.20' }],
      counts: { added: 1, removed: 1, changed: 1 },
      truncated: false,
    });
    assert.deepEqual(
      diff!.findings!.introduced.map((f) => f.id),
      ['CVE-2021-23337'],
    );
    assert.deepEqual(
      diff!.findings!.resolved.map((f) => f.id),
      ['CVE-2019-9923'],
    );

    // The previous build's artifacts past the job retention: said, not thrown.
    await store.remove(oldBuild);
    await store.remove(oldScan);
    const [gone] = await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, image);
    assert.equal(gone!.packages, null);
    assert.match(gone!.packages_unavailable!, new RegExp(`SBOM of the previous build \\(job ${oldBuild}, sbom.cdx.json\\) is gone`));
    assert.equal(gone!.findings, null);
    assert.match(gone!.findings_unavailable!, /scan report of the previous build .* is gone/);

    // This build did not scan; the previous one is only known by its tag (record expired).
    const [unscanned] = await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, { ...image, scan: undefined });
    assert.match(unscanned!.findings_unavailable!, /this build did not scan/);
    const [expired] = await diffAgainstPreviousBuilds({ catalogue: fakeCatalogue({ [`a|${tag}`]: prev }, {}), artifacts: store }, image);
    assert.equal(expired!.packages, null);
    assert.match(expired!.packages_unavailable!, /no longer in the catalogue/);
  });

  it('another platform: the default platforms are compared and the previous one named; reasons for each missing piece', async () => {
    const { store, put } = await artifacts();
    const [oldBuild, job] = [randomUUID(), randomUUID()];
    await put(oldBuild, 'sbom.cdx.json', sbom(pkg('tar', '1.34')));
    await put(job, 'sbom.cdx.json', 'not an sbom, but JSON');
    const prev: TagBuild = { reference: tag, digest: digest(1), build_job: oldBuild, at: 'x' };
    const catalogue = fakeCatalogue(
      { [`a|${tag}`]: prev },
      {
        [`a|${digest(1)}`]: record(digest(1), {
          platforms: ['linux/arm64'],
          sbom: {
            job_id: oldBuild,
            artifact: 'sbom.cdx.json',
            platforms: [{ platform: 'linux/arm64', digest: digest(8), artifact: 'sbom.cdx.json' }],
            attached: true,
          },
        }),
      },
    );
    const image: BuiltImage = {
      tenant: 'a',
      job_id: job,
      digest: digest(2),
      tags: [tag],
      sboms: [{ platform: 'linux/amd64', artifact: 'sbom.cdx.json' }],
      scan: { vulnerabilities: [], platforms: ['linux/amd64'], db_updated_at: null, vulnerabilities_scanned: false, filter: {} },
    };
    const [d] = await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, image);
    assert.equal(d!.platform, 'linux/amd64');
    assert.equal(d!.previous_platform, 'linux/arm64');
    assert.deepEqual(d!.packages?.removed, [pkg('tar', '1.34')], 'a document without components lists no packages');
    assert.match(d!.findings_unavailable!, /did not look for vulnerabilities/);
    const [noSbom] = await diffAgainstPreviousBuilds({ catalogue, artifacts: store }, { ...image, sboms: [], scan: undefined });
    assert.equal(noSbom!.platform, null);
    assert.match(noSbom!.packages_unavailable!, /this build has no SBOM/);
    assert.match(noSbom!.findings_unavailable!, /this build did not scan/);
    const [scannedOnly] = await diffAgainstPreviousBuilds(
      { catalogue, artifacts: store },
      { ...image, sboms: [], scan: { ...image.scan!, vulnerabilities_scanned: true } },
    );
    assert.match(scannedOnly!.packages_unavailable!, /this build has no SBOM/);
    assert.match(scannedOnly!.findings_unavailable!, /the previous build was never scanned/);
  });

  it(`compares at most ${MAX_DIFFS} previous digests`, async () => {
    const { store } = await artifacts();
    const tags = Array.from({ length: MAX_DIFFS + 2 }, (_, i) => `r.example/t/app:${i}`);
    const builds = Object.fromEntries(
      tags.map((t, i) => [`a|${t}`, { reference: t, digest: digest(10 + i), build_job: randomUUID(), at: 'x' }] as const),
    );
    const diff = await diffAgainstPreviousBuilds(
      { catalogue: fakeCatalogue(builds, {}), artifacts: store },
      { tenant: 'a', job_id: randomUUID(), digest: digest(2), tags, sboms: [] },
    );
    assert.equal(diff.length, MAX_DIFFS);
  });

  it('never fails the build: a failing or hanging catalogue leaves the diff out with a warning event', async () => {
    const { store } = await artifacts();
    const events: Record<string, unknown>[] = [];
    const ctx = {
      progress: async () => undefined,
      emit: async (_type: 'warning', data: Record<string, unknown>) => void events.push(data),
    };
    const image: BuiltImage = { tenant: 'a', job_id: randomUUID(), digest: digest(2), tags: [tag], sboms: [] };
    const failing = {
      lastBuild: async () => {
        throw new Error('Connection is closed.');
      },
      get: async () => undefined,
    };
    assert.equal(await diffForBuildResult({ catalogue: failing, artifacts: store }, image, ctx), undefined);
    assert.match(String(events[0]?.message), /no diff against the previous build: Connection is closed/);
    const hanging = { lastBuild: () => new Promise<undefined>(() => undefined), get: async () => undefined };
    assert.equal(await diffForBuildResult({ catalogue: hanging, artifacts: store }, image, ctx, 50), undefined);
    assert.match(String(events[1]?.message), /timed out after 50 ms/);
    assert.equal(
      await diffForBuildResult({ catalogue: fakeCatalogue({}, {}), artifacts: store }, image, ctx),
      undefined,
      'nothing to compare',
    );
    assert.equal(events.length, 2);
  });
});
