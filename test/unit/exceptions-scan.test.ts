import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import type { ImageInspector } from '../../src/engines/registry/image-inspector.js';
import type { ScanOptions, TrivyClient } from '../../src/engines/trivy/trivy-client.js';
import type { VulnerabilityException } from '../../src/exceptions/exception-store.js';
import { ArtifactStore } from '../../src/jobs/artifact-store.js';
import type { JobRecord } from '../../src/jobs/job-types.js';
import type { JobContext } from '../../src/workers/processor.js';
import { ScanProcessor } from '../../src/workers/scan.processor.js';
import { tempDir } from '../support/temp-dir.js';

const DIGEST = `sha256:${'c'.repeat(64)}`;
const PURL = `pkg:oci/app@sha256%3A${'c'.repeat(64)}`;

/**
 * Trivy's VEX handling as v0.74 does it for an image (pkg/vex): a not_affected statement
 * whose product is the image's purl moves the finding to ExperimentalModifiedFindings.
 */
function harness(exceptions: VulnerabilityException[]) {
  const cache = new Map<string, string>();
  const artifacts = new ArtifactStore(tempDir('stv-exc-scan-'));
  const runs: ScanOptions[] = [];
  const trivy = {
    dbUpdatedAt: async () => '2026-01-01T00:00:00Z',
    scanImage: async (pinned: string, report: string, options: ScanOptions) => {
      runs.push(options);
      const vuln = { VulnerabilityID: 'CVE-2021-23337', PkgName: 'lodash', InstalledVersion: '4.17.20', Severity: 'HIGH' };
      const doc = options.vexFile ? JSON.parse(readFileSync(options.vexFile, 'utf8')) : { statements: [] };
      const covered = doc.statements.some(
        (s: any) =>
          s.status === 'not_affected' && s.vulnerability.name === vuln.VulnerabilityID && s.products.some((p: any) => p['@id'] === PURL),
      );
      const result = covered
        ? {
            Target: 'Node.js',
            Class: 'lang-pkgs',
            ExperimentalModifiedFindings: [{ Type: 'vulnerability', Status: 'not_affected', Source: options.vexFile, Finding: vuln }],
          }
        : { Target: 'Node.js', Class: 'lang-pkgs', Vulnerabilities: [vuln] };
      writeFileSync(report, JSON.stringify({ ArtifactName: pinned, Results: [result] }));
    },
    convert: async (_report: string, format: string, out: string) => writeFileSync(out, format),
  } as unknown as TrivyClient;
  const inspector = {
    inspect: async (image: string) => ({
      reference: image,
      digest: DIGEST,
      manifest_digest: DIGEST,
      platforms: ['linux/amd64'],
      os: 'linux',
      architecture: 'amd64',
    }),
  } as unknown as ImageInspector;
  const redis = {
    get: async (k: string) => cache.get(k) ?? null,
    set: async (k: string, v: string) => void cache.set(k, v),
  } as unknown as Redis;
  const store = { active: async (_tenant: string, now = new Date()) => exceptions.filter((e) => Date.parse(e.expires) > now.getTime()) };
  const processor = new ScanProcessor({ trivy, inspector, artifacts, redis, cacheTtlSeconds: 60, exceptions: store });
  const scan = async (image: string) => {
    const job = {
      id: randomUUID(),
      tenant: 'team-a',
      action: 'scan',
      request: { action: 'scan', image, scanners: ['vuln'], policy: { max_high: 0 } },
    } as unknown as JobRecord<'scan'>;
    const ctx = { job, signal: new AbortController().signal, progress: async () => undefined } as unknown as JobContext<'scan'>;
    return { id: job.id, ...((await processor.process(ctx)) as any) };
  };
  return { scan, runs, artifacts };
}

const exception = (over: Partial<VulnerabilityException> = {}): VulnerabilityException => ({
  id: randomUUID(),
  vulnerability_id: 'CVE-2021-23337',
  scope: { repository: 'team/*' },
  reason: 'lodash template is never called',
  owner: 'alice',
  expires: new Date(Date.now() + 86_400_000).toISOString(),
  created_at: new Date().toISOString(),
  source: 'api',
  ...over,
});

describe('scans with exceptions', () => {
  it('pass a gate the finding failed, name the exception, and give Trivy the VEX document', async () => {
    const e = exception();
    const { scan, runs, artifacts } = harness([e]);
    const r = await scan('127.0.0.1:5000/team/app:1');
    assert.equal(r.policy.passed, true, JSON.stringify(r.policy));
    assert.deepEqual(r.policy.allowed, [
      { id: 'CVE-2021-23337', reason: e.reason, expires: e.expires, exception_id: e.id, owner: 'alice' },
    ]);
    assert.equal(r.vulnerabilities[0].status, 'not_affected', 'the finding carries the VEX status');
    assert.equal(r.vulnerabilities[0].vex.source, 'vex.openvex.json', 'a file name, not a server path');
    assert.equal(runs.length, 1);
    assert.ok(runs[0]!.vexFile?.endsWith('/vex.openvex.json'));
    assert.ok(r.artifacts.includes('vex.openvex.json'));
    assert.ok(existsSync(join(artifacts.dir(r.id), 'vex.openvex.json')));
  });

  it('do not apply to another repository, nor when expired; then Trivy gets no --vex', async () => {
    for (const e of [exception({ scope: { repository: 'other/*' } }), exception({ expires: new Date(Date.now() - 1000).toISOString() })]) {
      const { scan, runs } = harness([e]);
      const r = await scan('127.0.0.1:5000/team/app:1');
      assert.equal(r.policy.passed, false);
      assert.deepEqual(r.policy.allowed, []);
      assert.equal(runs[0]!.vexFile, undefined);
      assert.ok(!r.artifacts.includes('vex.openvex.json'));
    }
  });

  it('apply a digest scope to that digest in any repository', async () => {
    const { scan } = harness([exception({ scope: { digest: DIGEST } })]);
    assert.equal((await scan('127.0.0.1:5000/elsewhere/app:1')).policy.passed, true);
  });

  it('key the scan cache by the exceptions given to Trivy: withdrawing one scans again', async () => {
    const list = [exception()];
    const { scan, runs } = harness(list);
    assert.equal((await scan('127.0.0.1:5000/team/app:1')).policy.passed, true);
    assert.equal((await scan('127.0.0.1:5000/team/app:1')).cached, true);
    list.pop();
    const again = await scan('127.0.0.1:5000/team/app:1');
    assert.equal(again.cached, false);
    assert.equal(again.policy.passed, false);
    assert.equal(runs.length, 2);
  });
});
