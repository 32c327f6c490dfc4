import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import type { ImageInspector } from '../../src/engines/registry/image-inspector.js';
import type { TrivyClient } from '../../src/engines/trivy/trivy-client.js';
import { ArtifactStore } from '../../src/jobs/artifact-store.js';
import type { JobRecord } from '../../src/jobs/job-types.js';
import type { JobContext } from '../../src/workers/processor.js';
import { ScanProcessor } from '../../src/workers/scan.processor.js';
import { tempDir } from '../support/temp-dir.js';

const INDEX = `sha256:${'a'.repeat(64)}`;
const MANIFESTS: Record<string, string> = { 'linux/amd64': `sha256:${'c'.repeat(64)}`, 'linux/arm64': `sha256:${'d'.repeat(64)}` };

/**
 * Trivy, registry and Redis stand-ins, real artifact files: enough to see what the cache
 * shares and where each platform's reports go. `index`: the image is a two-platform index
 * (its arm64 image has one more finding), else a single amd64 manifest.
 */
function harness(index = false) {
  const store = new Map<string, string>();
  const root = tempDir('stv-scan-cache-');
  const artifacts = new ArtifactStore(root);
  const scanned: string[] = [];
  const trivy = {
    dbUpdatedAt: async () => '2026-01-01T00:00:00Z',
    scanImage: async (pinned: string, report: string) => {
      scanned.push(pinned);
      const vulns = [{ VulnerabilityID: 'CVE-2024-0001', PkgName: 'libc6', InstalledVersion: '1', Severity: 'HIGH' }];
      if (pinned.endsWith(MANIFESTS['linux/arm64']!))
        vulns.push({ VulnerabilityID: 'CVE-2024-0002', PkgName: 'zlib', InstalledVersion: '2', Severity: 'CRITICAL' });
      writeFileSync(
        report,
        JSON.stringify({
          ArtifactName: pinned,
          Results: [{ Target: `${pinned} (debian 12.0)`, Class: 'os-pkgs', Vulnerabilities: vulns }],
        }),
      );
    },
    // The converted reports name their source, so a test can tell whose file it holds.
    convert: async (report: string, format: string, out: string) =>
      writeFileSync(out, `${format} of ${JSON.parse(readFileSync(report, 'utf8')).ArtifactName}`),
  } as unknown as TrivyClient;
  const inspector = {
    inspect: async (image: string, platform?: string) => {
      const chosen = platform ?? 'linux/amd64';
      const [os, architecture] = chosen.split('/');
      return index
        ? { reference: image, digest: INDEX, manifest_digest: MANIFESTS[chosen], platforms: Object.keys(MANIFESTS), os, architecture }
        : {
            reference: image,
            digest: MANIFESTS['linux/amd64'],
            manifest_digest: MANIFESTS['linux/amd64'],
            platforms: ['linux/amd64'],
            os: 'linux',
            architecture: 'amd64',
          };
    },
  } as unknown as ImageInspector;
  const redis = {
    get: async (k: string) => store.get(k) ?? null,
    set: async (k: string, v: string) => void store.set(k, v),
  } as unknown as Redis;
  const processor = new ScanProcessor({ trivy, inspector, artifacts, redis, cacheTtlSeconds: 60 });
  const scan = async (tenant: string, image: string, extra: Record<string, unknown> = {}) => {
    const job = { id: randomUUID(), tenant, action: 'scan', request: { action: 'scan', image, ...extra } } as unknown as JobRecord<'scan'>;
    const ctx = {
      job,
      signal: new AbortController().signal,
      progress: async () => undefined,
      log: async () => undefined,
      emit: async () => undefined,
      fence: async () => undefined,
    } as JobContext<'scan'>;
    return { id: job.id, ...((await processor.process(ctx)) as any) };
  };
  const file = (jobId: string, name: string) => readFileSync(join(artifacts.dir(jobId), name), 'utf8');
  return { scan, scanned, artifacts, file };
}

describe('scan cache', () => {
  it('is per tenant: a cached scan names the repository (and the job) it came from', async () => {
    const { scan, scanned } = harness();
    const a = await scan('team-a', '127.0.0.1:5000/team-a/secret-project:1');
    assert.equal(a.cached, false);
    const b = await scan('team-b', '127.0.0.1:5000/team-b/app:1');
    assert.equal(b.cached, false, "another tenant's scan of the same digest is not reused");
    assert.equal(JSON.stringify(b).includes('team-a'), false, JSON.stringify(b.vulnerabilities));
    const again = await scan('team-a', '127.0.0.1:5000/team-a/secret-project:1');
    assert.equal(again.cached, true, "the tenant's own repeat is answered from the cache");
    assert.equal(scanned.length, 2);
    assert.deepEqual(again.artifacts, ['report.sarif.json', 'sbom.cdx.json', 'trivy-report.json']);
  });

  it('scans each platform of an index by its manifest digest, reports named per platform', async () => {
    const { scan, scanned, file } = harness(true);
    const r = await scan('t', '127.0.0.1:5000/t/app:1');
    assert.deepEqual(
      scanned,
      Object.values(MANIFESTS).map((d) => `127.0.0.1:5000/t/app@${d}`),
    );
    assert.deepEqual(
      r.platforms.map((p: any) => [p.platform, p.manifest_digest, p.artifacts.sbom, p.policy.passed]),
      [
        ['linux/amd64', MANIFESTS['linux/amd64'], 'sbom.cdx.linux-amd64.json', true],
        ['linux/arm64', MANIFESTS['linux/arm64'], 'sbom.cdx.linux-arm64.json', false],
      ],
    );
    assert.match(file(r.id, 'sbom.cdx.linux-arm64.json'), new RegExp(`cyclonedx of .*${MANIFESTS['linux/arm64']}`));
    assert.equal(r.artifacts.length, 6);
    assert.deepEqual(r.summary, { critical: 1, high: 1, medium: 0, low: 0, unknown: 0, fixable: 0 });
    assert.equal(r.policy.passed, false);
    assert.deepEqual(
      r.policy.violations.map((v: any) => [v.id, v.platform]),
      [['CVE-2024-0002', 'linux/arm64']],
    );

    const one = await scan('t', '127.0.0.1:5000/t/app:1', { platform: 'linux/arm64' });
    assert.equal(one.platforms.length, 1);
    assert.equal(one.cached, true, "the arm64 scan is the index scan's, from the cache");
    assert.deepEqual(one.artifacts, ['report.sarif.json', 'sbom.cdx.json', 'trivy-report.json']);
    assert.match(file(one.id, 'sbom.cdx.json'), new RegExp(MANIFESTS['linux/arm64']!), "arm64's own SBOM, under the plain name");
    assert.equal(scanned.length, 2);
  });

  it('copies a single-platform scan into an index scan under the per-platform names', async () => {
    const { scan, scanned, file } = harness(true);
    const arm = await scan('t', '127.0.0.1:5000/t/app:1', { platform: 'linux/arm64' });
    const all = await scan('t', '127.0.0.1:5000/t/app:1', { platform: 'all' });
    assert.deepEqual(
      all.platforms.map((p: any) => p.cached),
      [false, true],
    );
    assert.equal(all.cached, false);
    assert.equal(scanned.length, 2);
    assert.equal(file(all.id, 'report.sarif.linux-arm64.json'), file(arm.id, 'report.sarif.json'));
    assert.match(file(all.id, 'report.sarif.linux-amd64.json'), new RegExp(MANIFESTS['linux/amd64']!));
  });

  it('scans again when the cached scan’s reports are gone', async () => {
    const { scan, scanned, artifacts } = harness();
    const first = await scan('t', '127.0.0.1:5000/t/app:1');
    await artifacts.remove(first.id);
    const second = await scan('t', '127.0.0.1:5000/t/app:1');
    assert.equal(second.cached, false);
    assert.equal(scanned.length, 2);
    assert.deepEqual(second.artifacts, ['report.sarif.json', 'sbom.cdx.json', 'trivy-report.json']);
  });

  it('a retried job hitting its own cache entry keeps its reports', async () => {
    const root = tempDir('stv-artifacts-');
    const store = new ArtifactStore(root);
    const id = randomUUID();
    writeFileSync(join(await store.prepare(id), 'sbom.cdx.json'), 'sbom');
    await store.copyOne({ job: id, name: 'sbom.cdx.json' }, { job: id, name: 'sbom.cdx.json' });
    assert.equal(readFileSync(join(store.dir(id), 'sbom.cdx.json'), 'utf8'), 'sbom');
    await assert.rejects(store.copyOne({ job: id, name: '../x' }, { job: id, name: 'y' }));
    rmSync(root, { recursive: true });
  });
});
