import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import type { ImageInspector } from '../../src/engines/registry/image-inspector.js';
import type { TrivyClient } from '../../src/engines/trivy/trivy-client.js';
import type { ArtifactStore } from '../../src/jobs/artifact-store.js';
import type { JobRecord } from '../../src/jobs/job-types.js';
import type { JobContext } from '../../src/workers/processor.js';
import { ScanProcessor } from '../../src/workers/scan.processor.js';

const DIGEST = `sha256:${'c'.repeat(64)}`;

/** Trivy, registry, artifacts and Redis stand-ins: enough to see what the cache shares. */
function harness() {
  const store = new Map<string, string>();
  const root = mkdtempSync(join(tmpdir(), 'stv-scan-cache-'));
  const scanned: string[] = [];
  const trivy = {
    dbUpdatedAt: async () => '2026-01-01T00:00:00Z',
    scanImage: async (pinned: string, report: string) => {
      scanned.push(pinned);
      writeFileSync(
        report,
        JSON.stringify({
          ArtifactName: pinned,
          Results: [
            {
              Target: `${pinned} (debian 12.0)`,
              Class: 'os-pkgs',
              Vulnerabilities: [{ VulnerabilityID: 'CVE-2024-0001', PkgName: 'libc6', InstalledVersion: '1', Severity: 'HIGH' }],
            },
          ],
        }),
      );
    },
    convert: async () => undefined,
  } as unknown as TrivyClient;
  const inspector = {
    inspect: async (image: string) => ({ reference: image, manifest_digest: DIGEST, os: 'linux', architecture: 'amd64' }),
  } as unknown as ImageInspector;
  const artifacts = {
    prepare: async (id: string) => mkdtempSync(join(root, `${id}-`)),
    copy: async () => undefined,
    list: async () => [],
  } as unknown as ArtifactStore;
  const redis = {
    get: async (k: string) => store.get(k) ?? null,
    set: async (k: string, v: string) => void store.set(k, v),
  } as unknown as Redis;
  const processor = new ScanProcessor({ trivy, inspector, artifacts, redis, cacheTtlSeconds: 60 });
  let n = 0;
  const scan = (tenant: string, image: string) => {
    const job = { id: `job-${++n}`, tenant, action: 'scan', request: { action: 'scan', image } } as unknown as JobRecord<'scan'>;
    const ctx = {
      job,
      signal: new AbortController().signal,
      progress: async () => undefined,
      log: async () => undefined,
      emit: async () => undefined,
    } as JobContext<'scan'>;
    return processor.process(ctx);
  };
  return { scan, scanned };
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
  });
});
