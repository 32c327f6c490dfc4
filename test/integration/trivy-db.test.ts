import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import request from 'supertest';
import { ChildProcessRunner } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { ScannerUnavailableError, TrivyClient, type TrivySettings } from '../../src/engines/trivy/trivy-client.js';
import { startAppProcess } from '../support/app-process.js';
import { waitForJob } from '../support/build-helpers.js';
import { CACHE_DIR, TEST_SECRETS_KEY, TOOLS } from '../support/env.js';
import { AUTH, freePort, startStack, TOKEN, type Stack } from '../support/stack.js';
import { rawTar } from '../support/tar-fixtures.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { dbTarGz, pushDbArtifact, setDbMetadata } from '../support/trivy-db-artifact.js';
import { tempDir } from '../support/temp-dir.js';

/*
 * The Trivy DB of a server with STEVEDORE_TRIVY_DB_UPDATE=auto (the default): loaded
 * through PUT /v1/system/trivy-db, downloaded from a loopback registry holding it as
 * Trivy's OCI artifact, or missing. Every DB repository here is on loopback: a closed
 * port, or the test registry.
 */
describe('the Trivy DB: auto updates, the admin endpoint, and no DB', () => {
  let stack: Stack;
  let server: any;
  let cacheDir: string;
  let closedRepository: string;
  let image: string;
  const MAX_BYTES = 1024 * 1024;
  const LOADED_AT = '2026-11-15T00:00:00Z';

  const put = (body: Buffer, auth: Record<string, string> = AUTH, type = 'application/gzip') =>
    request(server).put('/v1/system/trivy-db').set(auth).set('content-type', type).send(body);
  const scan = async () =>
    waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send({ action: 'scan', image }).expect(202)).body.id);
  const system = async () => (await request(server).get('/v1/system').set(AUTH).expect(200)).body.trivy_db;
  const dbFiles = () =>
    ['trivy.db', 'metadata.json'].map((f) =>
      createHash('sha256')
        .update(readFileSync(join(cacheDir, 'db', f)))
        .digest('hex'),
    );

  before(async () => {
    cacheDir = tempDir('stv-trivy-auto-');
    closedRepository = `127.0.0.1:${await freePort()}/aquasec/trivy-db:2`;
    stack = await startStack({
      overrides: { trivy: { cacheDir, dbUpdate: 'auto', dbRepositories: [closedRepository], dbMaxBytes: MAX_BYTES } },
    });
    server = stack.app.getHttpServer();
    image = `${stack.registry.address}/library/debian:bookworm-slim`;
  });
  after(async () => {
    await stack?.stop();
  });

  it('without a DB, fails the scan with SCANNER_UNAVAILABLE saying how to provide one', async () => {
    const state = await system();
    assert.equal(state.mode, 'auto');
    assert.equal(state.present, false);
    const job = await scan();
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'SCANNER_UNAVAILABLE');
    for (const part of [
      `no Trivy vulnerability DB in ${cacheDir}/db`,
      'PUT /v1/system/trivy-db',
      'trivy.db and metadata.json',
      'STEVEDORE_TRIVY_DB_UPDATE',
      closedRepository,
    ])
      assert.ok(job.error.message.includes(part), `${part} in: ${job.error.message}`);
    // The closed repository was tried and found unreachable; the next scan does not try again at once.
    const tried = await system();
    assert.equal(tried.last_update.result, 'unreachable');
    assert.match(tried.hint, /PUT \/v1\/system\/trivy-db/);
    assert.equal((await scan()).error.code, 'SCANNER_UNAVAILABLE');
    assert.deepEqual((await system()).last_update, tried.last_update);
  });

  it('lets only the admin token load a DB', async () => {
    const body = await dbTarGz(await makeTrivyCache());
    for (const scopes of [['jobs:read'], ['admin']]) {
      const { key } = (await request(server).post('/v1/api-keys').set(AUTH).send({ tenant: 'team-db', scopes }).expect(201)).body;
      const res = await put(body, { authorization: `Bearer ${key}` }).expect(403);
      assert.equal(res.body.error.code, 'FORBIDDEN');
    }
    await put(body, {}).expect(401);
    assert.equal(existsSync(join(cacheDir, 'db', 'trivy.db')), false);
  });

  it('loads a DB through PUT /v1/system/trivy-db, and scans use it', async () => {
    const source = await makeTrivyCache();
    setDbMetadata(source, { UpdatedAt: LOADED_AT });
    const res = await put(await dbTarGz(source)).expect(200);
    assert.deepEqual(res.body, { updated_at: LOADED_AT, version: 2, size_bytes: readFileSync(join(source, 'db', 'trivy.db')).length });
    const state = await system();
    assert.equal(state.present, true);
    assert.equal(state.updated_at, LOADED_AT);
    assert.equal(state.source, 'uploaded');
    assert.equal(state.hint, undefined);
    const job = await scan();
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.equal(job.result.scanner.db_updated_at, LOADED_AT);
    assert.ok(
      job.result.vulnerabilities.some((v: any) => v.id === 'CVE-2019-9923'),
      'the loaded DB has an advisory for tar in bookworm',
    );
    assert.deepEqual(
      readdirSync(cacheDir).filter((f) => f.startsWith('.db-')),
      [],
      'no staging directory is left behind',
    );
  });

  it('refuses hostile and broken archives with 400 (413 over the limit), leaving the DB present untouched', async () => {
    const before = dbFiles();
    const source = await makeTrivyCache();
    const meta = readFileSync(join(source, 'db', 'metadata.json'), 'utf8');
    const oldSchema = await makeTrivyCache();
    setDbMetadata(oldSchema, { Version: 1 });
    const cases: [string, Buffer, number, RegExp][] = [
      ['traversal', gzipSync(rawTar([{ name: '../../trivy.db', type: '0', content: 'x' }])), 400, /outside the archive/],
      ['absolute', rawTar([{ name: '/etc/cron.d/x', type: '0', content: 'x' }]), 400, /outside the archive/],
      [
        'extra file',
        rawTar([
          { name: 'metadata.json', type: '0', content: meta },
          { name: 'evil.sh', type: '0', content: 'x' },
        ]),
        400,
        /unexpected entry/,
      ],
      [
        'symlink',
        rawTar([
          { name: 'trivy.db', type: '2', linkname: '/etc/shadow' },
          { name: 'metadata.json', type: '0', content: meta },
        ]),
        400,
        /is a link/,
      ],
      [
        'hard link',
        rawTar([
          { name: 'metadata.json', type: '0', content: meta },
          { name: 'trivy.db', type: '1', linkname: 'metadata.json' },
        ]),
        400,
        /is a link/,
      ],
      ['garbage', Buffer.from('not a tar, not a gzip; '.repeat(100)), 400, /not a readable tar archive/],
      ['old schema', await dbTarGz(oldSchema), 400, /schema version 1/],
      [
        'not bbolt',
        rawTar([
          { name: 'trivy.db', type: '0', content: 'SQLite format 3' },
          { name: 'metadata.json', type: '0', content: meta },
        ]),
        400,
        /not a bbolt/,
      ],
      ['oversize', Buffer.alloc(MAX_BYTES + 1024), 413, /over the limit of 1048576 bytes/],
      [
        'oversize entry',
        gzipSync(rawTar([{ name: 'trivy.db', type: '0', content: 'x'.repeat(MAX_BYTES + 1) }])),
        413,
        /trivy.db is \d+ bytes, over/,
      ],
      ['zeros after the end', gzipSync(Buffer.alloc(1.5 * MAX_BYTES)), 400, /data appended/],
    ];
    for (const [what, body, status, message] of cases) {
      const res = await put(body, AUTH, what === 'absolute' || what === 'extra file' ? 'application/x-tar' : 'application/gzip');
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'details', 'message'], what);
      assert.equal(res.body.error.code, status === 413 ? 'TRIVY_DB_TOO_LARGE' : 'INVALID_TRIVY_DB', what);
      assert.match(res.body.error.message, message, what);
      assert.deepEqual(dbFiles(), before, `${what}: the DB present is untouched`);
    }
    await put(Buffer.from('{}'), AUTH, 'application/json').expect(415);
    assert.deepEqual(
      readdirSync(cacheDir).filter((f) => f.startsWith('.db-')),
      [],
    );
    assert.equal((await system()).updated_at, LOADED_AT);
  });
});

describe('auto updates from a loopback registry holding the DB as an OCI artifact', () => {
  let registry: string;
  let pinned: string;
  let stack: Stack;
  const PUSHED_AT = '2026-11-20T00:00:00Z';
  const client = (overrides: Partial<TrivySettings>) =>
    new TrivyClient(new ChildProcessRunner(), {
      trivy: TOOLS.trivy,
      cacheDir: tempDir('stv-trivy-dl-'),
      dbUpdate: 'auto',
      insecureRegistries: [],
      ...overrides,
    });
  const scanWith = async (trivy: TrivyClient) => {
    const updatedAt = await trivy.dbUpdatedAt();
    const report = join(tempDir('stv-trivy-report-'), 'r.json');
    await trivy.scanImage(pinned, report, { scanners: ['vuln'] });
    return { updatedAt, report: JSON.parse(readFileSync(report, 'utf8')) };
  };

  before(async () => {
    // Only for its seeded registry and Redis (the start-up line below).
    stack = await startStack({ overrides: { trivy: { cacheDir: await makeTrivyCache(), dbUpdate: false } } });
    registry = stack.registry.address;
    const digest = await new RegistryClient(registry).manifestDigest('library/debian', 'bookworm-slim');
    pinned = `${registry}/library/debian@${digest}`;
    const source = await makeTrivyCache();
    setDbMetadata(source, { UpdatedAt: PUSHED_AT });
    await pushDbArtifact(registry, 'aquasec/trivy-db', '2', source);
  });
  after(async () => {
    await stack?.stop();
  });

  it('downloads the DB before the first scan and installs it', async () => {
    const trivy = client({ dbRepositories: [`${registry}/aquasec/trivy-db:2`] });
    const { updatedAt, report } = await scanWith(trivy);
    assert.equal(updatedAt, PUSHED_AT);
    assert.ok(JSON.stringify(report).includes('CVE-2019-9923'));
    const state = await trivy.db.state();
    assert.equal(state.source, 'downloaded');
    assert.equal(state.last_update?.result, 'updated');
    assert.ok(state.downloaded_at, 'Trivy stamped DownloadedAt');
  });

  it('with an unreachable repository, scans with the DB present and records why it did not update', async () => {
    const trivy = client({ dbRepositories: [`127.0.0.1:${await freePort()}/aquasec/trivy-db:2`] });
    // A DB copied by hand long ago and due for an update: kept, and used.
    const dir = (trivy as unknown as { settings: TrivySettings }).settings.cacheDir;
    const { cpSync } = await import('node:fs');
    cpSync(join(await makeTrivyCache(), 'db'), join(dir, 'db'), { recursive: true });
    setDbMetadata(dir, { NextUpdate: '2026-01-02T00:00:00Z', DownloadedAt: '2026-01-01T00:00:00Z' });
    const { updatedAt, report } = await scanWith(trivy);
    assert.equal(updatedAt, '2026-11-01T00:00:00Z');
    assert.ok(JSON.stringify(report).includes('CVE-2019-9923'));
    await trivy.db.update(); // the attempt that ran beside the scan (shared while it runs)
    const state = await trivy.db.state();
    assert.equal(state.source, 'found');
    assert.equal(state.last_update?.result, 'unreachable');
    assert.equal(state.updated_at, '2026-11-01T00:00:00Z');
  });

  it('with no DB and an unreachable repository, the scan fails with the hint', async () => {
    const repository = `127.0.0.1:${await freePort()}/aquasec/trivy-db:2`;
    const trivy = client({ dbRepositories: [repository] });
    await assert.rejects(scanWith(trivy), (err: Error) => {
      assert.ok(err instanceof ScannerUnavailableError, err.message);
      assert.match(
        err.message,
        /no Trivy vulnerability DB in .* no DB could be downloaded from 127\.0\.0\.1:\d+\/aquasec\/trivy-db:2 \(no answer/,
      );
      return true;
    });
  });

  it('prints the DB state at start', async () => {
    const env = (trivyCacheDir: string) => ({
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      STEVEDORE_CACHE_DIR: CACHE_DIR,
      STEVEDORE_STATE_DIR: tempDir('stv-db-state-'),
      STEVEDORE_HTTP_HOST: '127.0.0.1',
      STEVEDORE_LOG_LEVEL: 'info',
      REDIS_URL: stack.redisUrl,
      STEVEDORE_TOKEN: TOKEN,
      STEVEDORE_SECRETS_KEY: TEST_SECRETS_KEY,
      STEVEDORE_TRIVY_CACHE_DIR: trivyCacheDir,
      STEVEDORE_TRIVY_DB_REPOSITORY: `${registry}/aquasec/trivy-db:2`,
    });
    const empty = tempDir('stv-trivy-none-');
    for (const [dir, line] of [
      [
        empty,
        new RegExp(
          `Trivy DB: absent; updates: auto from ${registry}/aquasec/trivy-db:2 when reachable\\. ` +
            `no Trivy vulnerability DB in ${empty}/db and none has been downloaded`,
        ),
      ],
      [await makeTrivyCache(), /Trivy DB: present in \S+, UpdatedAt 2026-11-01T00:00:00Z, found in the cache dir; updates: auto/],
    ] as const) {
      const api = startAppProcess('api', {
        ...env(dir),
        STEVEDORE_HTTP_PORT: String(await freePort()),
        STEVEDORE_GRPC_PORT: String(await freePort()),
      });
      try {
        await api.waitForOutput(line);
      } finally {
        await api.stop();
      }
      // Reading the state downloads nothing.
      assert.equal(existsSync(join(empty, 'db')), false);
    }
  });
});
