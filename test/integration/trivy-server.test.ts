import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChildProcessRunner } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { ScannerUnavailableError, TrivyClient, type TrivySettings } from '../../src/engines/trivy/trivy-client.js';
import { normalizeReport } from '../../src/engines/trivy/trivy-report.js';
import { Daemon, waitReady } from '../../src/runtime/daemon.js';
import { TOOLS } from '../support/env.js';
import { startSeededRegistry, type StartedRegistry } from '../support/services.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { tempDir } from '../support/temp-dir.js';

const TOKEN = `trivy-token-${Date.now()}`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
      .once('error', reject)
      .listen(0, '127.0.0.1', () => {
        const port = (srv.address() as { port: number }).port;
        srv.close(() => resolve(port));
      });
  });
}

/**
 * Client/server mode (TRIVY_SERVER_URL, TRIVY_TOKEN) against a real `trivy server`
 * holding the test DB: the workers keep no DB, the server detects.
 */
describe('Trivy client/server mode against a real trivy server', () => {
  let registry: StartedRegistry;
  let server: Daemon;
  let serverUrl: string;
  let pinned: string;
  const client = (overrides: Partial<TrivySettings> = {}) =>
    new TrivyClient(new ChildProcessRunner(), {
      trivy: TOOLS.trivy,
      cacheDir: tempDir('stv-trivy-client-'),
      dbUpdate: false,
      serverUrl,
      serverToken: TOKEN,
      insecureRegistries: [],
      ...overrides,
    });

  before(async () => {
    registry = await startSeededRegistry();
    const digest = await new RegistryClient(registry.address).manifestDigest('library/debian', 'bookworm-slim');
    pinned = `${registry.address}/library/debian@${digest}`;
    const dbDir = await makeTrivyCache();
    const port = await freePort();
    serverUrl = `http://127.0.0.1:${port}`;
    server = new Daemon(
      'trivy-server',
      TOOLS.trivy,
      ['server', '--listen', `127.0.0.1:${port}`, '--cache-dir', dbDir, '--token', TOKEN, '--skip-db-update'],
      tempDir('stv-trivy-server-'),
    );
    server.start();
    await waitReady(
      server,
      async () => {
        const res = await fetch(`${serverUrl}/healthz`);
        if (!res.ok) throw new Error(`healthz ${res.status}`);
      },
      30_000,
    );
  });
  after(async () => {
    await server?.stop();
    await registry?.container.stop();
  });

  it('scans through the server: findings from its DB, the client has none', async () => {
    const trivy = client();
    const cacheDir = (trivy as unknown as { settings: TrivySettings }).settings.cacheDir;
    const report = join(cacheDir, 'report.json');
    await trivy.scanImage(pinned, report, { scanners: ['vuln', 'secret'] });
    const scan = normalizeReport(JSON.parse(readFileSync(report, 'utf8')));
    assert.ok(
      scan.vulnerabilities.some((v) => v.id === 'CVE-2011-3374'),
      'a finding of the test DB',
    );
    // The detection ran on the server: it logs the OS it detected for this client's blobs.
    assert.match(server.logTail(50), /Detecting vulnerabilities/);
  });

  it("keys scan caches on the server's DB (GET /version), not on its address", async () => {
    assert.equal(await client().dbUpdatedAt(), '2026-11-01T00:00:00Z');
    assert.equal(await client({ serverUrl: 'http://127.0.0.1:9' }).dbUpdatedAt(), undefined, 'unreachable: no cache key');
  });

  it('reports a wrong token and an unreachable server as the scanner being unavailable', async () => {
    const dir = tempDir('stv-trivy-report-');
    await assert.rejects(
      client({ serverToken: 'not-the-token' }).scanImage(pinned, join(dir, 'a.json'), { scanners: ['vuln'] }),
      (err: Error) => {
        assert.ok(err instanceof ScannerUnavailableError, `${err.constructor.name}: ${err.message}`);
        assert.match(err.message, /invalid token|unauthenticated/);
        assert.ok(!err.message.includes('not-the-token'), 'the token is never echoed');
        return true;
      },
    );
    const down = `http://127.0.0.1:${await freePort()}`;
    await assert.rejects(
      client({ serverUrl: down }).scanImage(pinned, join(dir, 'b.json'), { scanners: ['vuln'], timeoutMs: 120_000 }),
      (err: Error) => {
        assert.ok(err instanceof ScannerUnavailableError, `${err.constructor.name}: ${err.message}`);
        assert.match(err.message, new RegExp(`Trivy server ${down}`));
        return true;
      },
    );
  });
});
