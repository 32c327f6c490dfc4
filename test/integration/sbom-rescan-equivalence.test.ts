import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { diffScans } from '../../src/analysis/vulnerabilities/scan-diff.js';
import { ChildProcessRunner } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { asImageReport, normalizeReport, type TrivyReport, type Vulnerability } from '../../src/engines/trivy/trivy-report.js';
import { reportFacts } from '../../src/policies/report-facts.js';
import { sbomPurls, scanVexDocument } from '../../src/exceptions/openvex.js';
import type { VulnerabilityException } from '../../src/exceptions/exception-store.js';
import { TrivyClient } from '../../src/engines/trivy/trivy-client.js';
import { BASE_IMAGE } from '../../src/runtime/seed-base-image.js';
import { TOOLS } from '../support/env.js';
import { pushImageWithFiles } from '../support/images.js';
import { startSeededRegistry, type StartedRegistry } from '../support/services.js';
import { dbTarGz } from '../support/trivy-db-artifact.js';
import { makeTrivyCache, VARIANT_2_CHANGES, type TestDbVariant } from '../support/trivy-db.js';
import { tempDir } from '../support/temp-dir.js';

/*
 * How we know a rescan from the stored SBOM finds what a rescan of the image would
 * (issue 19): for both test DBs, every test image is scanned the way the scan stage
 * does it (TrivyClient.scanImage: `trivy image --image-src remote --scanners
 * secret,vuln --format json --list-all-pkgs`, then `trivy convert --format cyclonedx`
 * of that report: the stored SBOM), and that SBOM is scanned with TrivyClient.scanSbom
 * on the same DB, and on the next DB (the actual rescan: an SBOM stored under DB 1,
 * scanned when DB 2 arrives). The normalised findings must be identical.
 *
 * The flags of the SBOM scan (TrivyClient.scanSbom), and why:
 *   trivy sbom --quiet --no-progress --cache-dir <the scans' cache dir>
 *     --skip-java-db-update --skip-version-check --disable-telemetry
 *     --skip-db-update --offline-scan     (as scanImage: never touch the DB or the network;
 *                                          with STEVEDORE_TRIVY_DB_UPDATE=true, --db-repository … instead)
 *     --cache-backend memory              (the sbom command's default, said aloud; no bolt lock)
 *     --scanners vuln                     (sbom knows vuln and license only)
 *     --format json --output <report> --list-all-pkgs   (the same report as an image scan:
 *                                          Packages listed, which named policies read)
 *     [--severity …] [--ignore-unfixed] [--vex <file> --show-suppressed]   (as scanImage)
 *     [--server <url>]                    (client/server mode; token by environment)
 *     -- <sbom.cdx.json>
 * Not passed: --skip-check-update (a misconfiguration flag; `trivy sbom` refuses it as an
 * unknown flag), --image-src, --platform, --insecure (nothing is pulled). Nothing else is
 * needed: Trivy decodes the CycloneDX components back into the OS (debian 12.x) and its
 * packages with their source name and version (properties aquasecurity:trivy:Src*), so
 * Debian advisories are matched by source package as in an image scan, and it ignores
 * the SBOM's own `vulnerabilities` (the findings of the scan that produced it).
 *
 * Differences found, and how they are resolved:
 *  - The report names the SBOM file where an image scan names the image (ArtifactName,
 *    and the OS result's Target "<file> (debian 12.15)", which becomes every OS finding's
 *    `target`: a server path). asImageReport(report, sbomFile, pinnedRef) puts the image
 *    back; then every field of every normalised finding is the image scan's.
 *  - Trivy's raw entries differ only in per-run ids (PkgIdentifier.UID, a BOMRef added,
 *    Fingerprint). Its package list spells a decoded deb's version whole (Version
 *    "5.2.15-2+b13", no Release), normalises license names, and drops InstalledFiles,
 *    Maintainer and Repository; reportFacts (what named policies read) is the same.
 *  - Exceptions (--vex): the scan stage's document names the image's purl, which Trivy
 *    matches at the root of an image scan; an SBOM scan's root has no purl (Trivy rebuilds
 *    the tree from a report whose artifact is the SBOM file), so nothing was set aside.
 *    scanVexDocument({..., packages: sbomPurls(sbom)}) also names every package of the
 *    SBOM, matched at the package itself: the same findings set aside either way.
 *  - Secret findings: an SBOM has no file contents. They do not depend on the DB either,
 *    so a rescan keeps the previous scan's secrets.
 */

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
const AWS_KEY_ID = `AKIA${Array.from(randomBytes(16), (b) => ALNUM[b % 32]).join('')}`;
const AWS_SECRET = randomBytes(30).toString('base64');
const VARIANTS: TestDbVariant[] = [1, 2];

/** The fields a finding is compared on (a rescan's diff and the gates use these). */
const comparable = (vs: Vulnerability[]) =>
  vs
    .map((v) => ({
      id: v.id,
      package: v.package,
      installed_version: v.installed_version,
      fixed_version: v.fixed_version,
      severity: v.severity,
      status: v.status,
    }))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));

/** Trivy's own finding entries, less what differs per run: the package's UID (+ BOMRef from an SBOM) and the fingerprint. */
const rawFindings = (report: TrivyReport) =>
  (report.Results ?? [])
    .flatMap((r) =>
      (r.Vulnerabilities ?? []).map((v) => {
        const { Fingerprint: _f, PkgIdentifier, ...rest } = v as typeof v & { Fingerprint?: string; PkgIdentifier?: { PURL?: string } };
        return JSON.stringify({ class: r.Class, ...rest, purl: PkgIdentifier?.PURL });
      }),
    )
    .sort();

interface Scanned {
  /** The image scan's JSON report and its findings. */
  imageReport: TrivyReport;
  image: Vulnerability[];
  /** The pinned image scanned. */
  ref: string;
  /** The CycloneDX SBOM the scan stage stores for it. */
  sbomFile: string;
  /** `trivy sbom` of that SBOM on the same DB. */
  sbomReport: TrivyReport;
  sbom: Vulnerability[];
}

describe('SBOM rescans find the same findings as image rescans (real Trivy, real registry, both test DBs)', () => {
  let registry: StartedRegistry;
  const work = tempDir('stv-sbom-eq-');
  const images: { name: string; ref: string; debian: true; lodash: boolean }[] = [];
  const trivy = {} as Record<TestDbVariant, TrivyClient>;
  const scans = {} as Record<TestDbVariant, Map<string, Scanned>>;
  /** The SBOM stored under DB 1, rescanned with DB 2. */
  const rescans = new Map<string, TrivyReport>();
  const read = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as TrivyReport;

  before(async () => {
    registry = await startSeededRegistry();
    const client = new RegistryClient(registry.address);
    const { repository, tag } = BASE_IMAGE;
    // Every platform manifest of the seeded base, pinned by digest as the scan stage scans them.
    const index = await client.getManifest(repository, tag);
    const platforms = index.json.manifests ?? [];
    assert.ok(platforms.length >= 1, 'the base is an index');
    for (const m of platforms)
      images.push({
        name: `debian ${m.platform!.architecture}`,
        ref: `${registry.address}/${repository}@${m.digest}`,
        debian: true,
        lodash: false,
      });
    // The base with an old lodash under node_modules and a planted AWS credential file.
    const amd64 = platforms.find((m) => m.platform?.architecture === 'amd64')!;
    const app = await pushImageWithFiles(
      registry.address,
      { repository, digest: amd64.digest },
      { repository: 'team/lodash-app', tag: '1' },
      {
        'app/node_modules/lodash/package.json': JSON.stringify({ name: 'lodash', version: '4.17.20', license: 'MIT' }),
        'root/.aws/credentials': `[default]\naws_access_key_id = ${AWS_KEY_ID}\naws_secret_access_key = ${AWS_SECRET}\n`,
      },
    );
    images.push({ name: 'debian + lodash', ref: `${registry.address}/team/lodash-app@${app}`, debian: true, lodash: true });

    for (const variant of VARIANTS) {
      trivy[variant] = new TrivyClient(new ChildProcessRunner(), {
        trivy: TOOLS.trivy,
        cacheDir: await makeTrivyCache({ variant }),
        dbUpdate: false,
        insecureRegistries: [],
      });
      scans[variant] = new Map();
      for (const [i, image] of images.entries()) {
        const file = (what: string) => join(work, `db${variant}-${i}-${what}`);
        // Exactly the scan stage's calls (scan-stage.ts runTrivy, default scanners).
        await trivy[variant].scanImage(image.ref, file('trivy-report.json'), { scanners: ['secret', 'vuln'], timeoutMs: 300_000 });
        await trivy[variant].convert(file('trivy-report.json'), 'cyclonedx', file('sbom.cdx.json'));
        await trivy[variant].scanSbom(file('sbom.cdx.json'), file('sbom-report.json'), { timeoutMs: 300_000 });
        const imageReport = read(file('trivy-report.json'));
        const sbomReport = read(file('sbom-report.json'));
        scans[variant].set(image.name, {
          ref: image.ref,
          imageReport,
          image: normalizeReport(imageReport).vulnerabilities,
          sbomFile: file('sbom.cdx.json'),
          sbomReport,
          sbom: normalizeReport(sbomReport).vulnerabilities,
        });
      }
    }
    for (const [i, image] of images.entries()) {
      const out = join(work, `db1-sbom-rescanned-db2-${i}.json`);
      await trivy[2].scanSbom(scans[1].get(image.name)!.sbomFile, out, { timeoutMs: 300_000 });
      rescans.set(image.name, read(out));
    }
  });
  after(async () => {
    await registry?.container.stop();
  });

  it('the two test DBs: variant 2 has the later UpdatedAt, and its tar.gz (an admin DB load) carries it', async () => {
    assert.equal(await trivy[1].dbUpdatedAt(), VARIANT_2_CHANGES.updatedAt[1]);
    assert.equal(await trivy[2].dbUpdatedAt(), VARIANT_2_CHANGES.updatedAt[2]);
    const tar = gunzipSync(await dbTarGz({ variant: 2 })).toString('latin1');
    assert.ok(tar.includes('trivy.db') && tar.includes(`"UpdatedAt":"${VARIANT_2_CHANGES.updatedAt[2]}"`));
  });

  it('each DB: trivy sbom on the stored SBOM finds exactly what trivy image found', () => {
    for (const variant of VARIANTS)
      for (const image of images) {
        const s = scans[variant].get(image.name)!;
        const ids = s.image.map((v) => v.id);
        // Not vacuous: the findings the test DB is made for are there.
        assert.ok(ids.includes('CVE-2011-3374') && ids.includes('CVE-2023-45853'), `${image.name}, DB ${variant}: ${ids.join(', ')}`);
        if (image.lodash) assert.ok(ids.includes('CVE-2021-23337'), `${image.name}: lodash`);
        assert.deepEqual(comparable(s.sbom), comparable(s.image), `${image.name}, DB ${variant}`);
      }
  });

  it('the rescan itself: an SBOM stored under DB 1, scanned with DB 2, finds what an image scan with DB 2 finds', () => {
    for (const image of images)
      assert.deepEqual(
        comparable(normalizeReport(rescans.get(image.name)!).vulnerabilities),
        comparable(scans[2].get(image.name)!.image),
        image.name,
      );
  });

  it('from DB 1 to DB 2 a rescan introduces CVE-2022-3715 (bash, HIGH, fixable), resolves CVE-2019-9923 (tar), nothing else', () => {
    const pick = (f: { id: string; package: string; severity: string; fixed_version: string | null }) => ({
      id: f.id,
      package: f.package,
      severity: f.severity,
      fixed_version: f.fixed_version,
    });
    for (const image of images) {
      for (const current of [normalizeReport(rescans.get(image.name)!).vulnerabilities, scans[2].get(image.name)!.image]) {
        const diff = diffScans(scans[1].get(image.name)!.image, current);
        assert.deepEqual(diff.introduced.map(pick), VARIANT_2_CHANGES.introduced, image.name);
        assert.deepEqual(diff.resolved.map(pick), VARIANT_2_CHANGES.resolved, image.name);
        assert.deepEqual([diff.severity_changed, diff.fix_changed], [[], []], image.name);
        // Reported under the binary package's version (a binNMU: 5.2.15-2+bN), matched by its source's.
        assert.match(diff.introduced[0]!.installed_version, /^5\.2\.15-2(\+b\d+)?$/);
      }
    }
  });

  it('named the image it stands for (asImageReport), an SBOM scan report gives every field of every finding as the image scan', () => {
    const cases = [
      ...VARIANTS.flatMap((variant) =>
        images.map((image) => {
          const s = scans[variant].get(image.name)!;
          return { what: `${image.name}, DB ${variant}`, sbomFile: s.sbomFile, sbomReport: s.sbomReport, image: s };
        }),
      ),
      ...images.map((image) => ({
        what: `${image.name}, DB 1 SBOM rescanned with DB 2`,
        sbomFile: scans[1].get(image.name)!.sbomFile,
        sbomReport: rescans.get(image.name)!,
        image: scans[2].get(image.name)!,
      })),
    ];
    for (const c of cases) {
      // As Trivy writes it, the OS result names the SBOM file (a server path) where the image scan names the image.
      const os = (r: TrivyReport) => r.Results!.find((x) => x.Class === 'os-pkgs')!.Target;
      assert.equal(os(c.sbomReport), `${c.sbomFile} (${os(c.image.imageReport).split(' (')[1]}`, c.what);
      const retargeted = asImageReport(c.sbomReport, c.sbomFile, c.image.ref);
      const sort = (vs: Vulnerability[]) => vs.map((v) => JSON.stringify(v)).sort();
      assert.deepEqual(sort(normalizeReport(retargeted).vulnerabilities), sort(c.image.image), `${c.what}: normalised findings`);
      // Trivy's raw entries too (title, CVSS, dates, data source, layer, purl …), apart from its per-run ids.
      assert.deepEqual(rawFindings(retargeted), rawFindings(c.image.imageReport), `${c.what}: Trivy's entries`);
    }
  });

  it('an SBOM scan report gives named policies the same packages and advisory dates; secrets only come from image scans', () => {
    for (const variant of VARIANTS)
      for (const image of images) {
        const s = scans[variant].get(image.name)!;
        // Trivy lists a decoded package as Version "5.2.15-2+b13" (no Release) where an image
        // scan has Version "5.2.15" + Release "2+b13", and drops InstalledFiles, Maintainer and
        // Repository: named policies read packages through reportFacts (epoch:version-release),
        // which gives the same list either way.
        const facts = (r: TrivyReport) => {
          const f = reportFacts(r);
          return { packages: f.packages.map((p) => `${p.name}@${p.version}`).sort(), published: [...f.published].sort() };
        };
        const [fromSbom, fromImage] = [facts(s.sbomReport), facts(s.imageReport)];
        assert.ok(fromImage.packages.length > 50 && fromImage.packages.some((p) => /^bash@5\.2\.15-2/.test(p)), image.name);
        assert.deepEqual(fromSbom, fromImage, `${image.name}, DB ${variant}`);
        // The SBOM holds no file contents: a rescan keeps the previous scan's secrets.
        if (image.lodash)
          assert.ok(
            normalizeReport(s.imageReport).secrets.some((x) => x.target.includes('.aws/credentials')),
            'the image scan found the secret',
          );
        assert.deepEqual(normalizeReport(s.sbomReport).secrets, []);
        assert.ok(!JSON.stringify(s.sbomReport).includes(AWS_SECRET) && !readFileSync(s.sbomFile, 'utf8').includes(AWS_SECRET));
      }
  });

  it('exceptions: the VEX document must also name the packages (sbomPurls) for trivy sbom to set the same findings aside', async () => {
    const image = images.find((i) => i.lodash)!;
    const s = scans[2].get(image.name)!;
    const exception = (vulnerability_id: string): VulnerabilityException => ({
      id: `exc-${vulnerability_id}`,
      vulnerability_id,
      scope: { repository: 'team/*' },
      reason: 'not reachable from the entry point',
      owner: 'platform-team',
      expires: '2099-01-01T00:00:00Z',
      created_at: '2026-11-01T00:00:00Z',
      source: 'api',
    });
    const excepted = ['CVE-2021-23337', 'CVE-2022-3715'];
    const target = { repository: 'team/lodash-app', manifestDigest: image.ref.split('@')[1]! };
    const scanBoth = async (name: string, doc: object) => {
      // One directory each, the file named as the scan stage names it (the findings carry its name).
      mkdirSync(join(work, name));
      const vexFile = join(work, name, 'vex.openvex.json');
      writeFileSync(vexFile, JSON.stringify(doc));
      const [imageOut, sbomOut] = [join(work, `${name}-image.json`), join(work, `${name}-sbom.json`)];
      await trivy[2].scanImage(image.ref, imageOut, { scanners: ['secret', 'vuln'], vexFile, timeoutMs: 300_000 });
      await trivy[2].scanSbom(s.sbomFile, sbomOut, { vexFile, timeoutMs: 300_000 });
      return {
        image: normalizeReport(read(imageOut)).vulnerabilities,
        sbom: normalizeReport(asImageReport(read(sbomOut), s.sbomFile, image.ref)).vulnerabilities,
      };
    };
    const setAside = (vs: Vulnerability[]) =>
      vs
        .filter((v) => v.vex)
        .map((v) => `${v.id} ${v.status}`)
        .sort();
    const sort = (vs: Vulnerability[]) => vs.map((v) => JSON.stringify(v)).sort();
    const wanted = excepted.map((id) => `${id} not_affected`);

    // The scan stage's document (a statement on the image's purl): it works on the image,
    // not on the SBOM, whose scan gives Trivy's tree a root without a purl.
    const imageOnly = await scanBoth('vex-image-only', scanVexDocument(target, excepted.map(exception)));
    assert.deepEqual(setAside(imageOnly.image), wanted);
    assert.deepEqual(setAside(imageOnly.sbom), [], 'trivy sbom matched a statement on the image purl: scanVexDocument can drop packages');

    // With the SBOM's package purls as products too: the same findings set aside, every field equal.
    const packages = sbomPurls(JSON.parse(readFileSync(s.sbomFile, 'utf8')));
    assert.ok(packages.some((p) => p.startsWith('pkg:npm/lodash@')) && packages.some((p) => p.startsWith('pkg:deb/debian/bash@')));
    const withPackages = await scanBoth('vex-packages', scanVexDocument({ ...target, packages }, excepted.map(exception)));
    assert.deepEqual(setAside(withPackages.image), wanted);
    assert.deepEqual(sort(withPackages.sbom), sort(withPackages.image));
    assert.deepEqual(sort(withPackages.image), sort(imageOnly.image), 'for an image scan, the packages change nothing');
  });
});
