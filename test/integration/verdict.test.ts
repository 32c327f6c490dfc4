import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { CatalogueStore } from '../../src/catalogue/catalogue-store.js';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { baseLayoutDir } from '../../src/runtime/seed-base-image.js';
import { waitForJob } from '../support/build-helpers.js';
import { CACHE_DIR, TOOLS } from '../support/env.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { tempDir } from '../support/temp-dir.js';

const PASSWORD = `verdict-${Date.now()}`;
process.env.STV_VERDICT_COSIGN_PASSWORD = PASSWORD;
const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();
/** zlib1g's CRITICAL in the project's test DB (test/trivy-db): no fixed version, on every platform of the base image. */
const ZLIB = 'CVE-2023-45853';

// GET /v1/images/{digest}/verdict and sign/push with a named policy on the real stack:
// real Redis, the real registry, real Trivy with the project's test DB, real cosign.
describe('the verdict of a named policy on a catalogued digest, and sign/push gated by it', () => {
  let stack: Stack;
  let server: any;
  let redis: Redis;
  let registry: RegistryClient;
  let image: string;
  let digest: string;
  let teamB: Record<string, string>;
  let scanJob: any;

  const submit = async (body: object) =>
    waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send(body).expect(202)).body.id);
  const scanImage = async () => {
    const job = await submit({ action: 'scan', image, scanners: ['vuln'] });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    return job;
  };
  const verdict = (policy: string, auth: Record<string, string> = AUTH, d = digest) =>
    request(server).get(`/v1/images/${d}/verdict`).query({ policy }).set(auth);
  const put = (name: string, rules: object, auth: Record<string, string> = AUTH) =>
    request(server).put(`/v1/policies/${name}`).set(auth).send(rules);
  /** What cosign leaves in the registry for a signed digest: a `sha256-<hex>` tag and/or OCI referrers. */
  const signatureArtifacts = async (repository: string) => {
    const base = `http://${stack.registry.address}/v2/${repository}`;
    const tags = ((await (await fetch(`${base}/tags/list`)).json()) as { tags?: string[] }).tags ?? [];
    const referrers = await fetch(`${base}/referrers/${digest}`);
    const manifests = referrers.ok ? (((await referrers.json()) as { manifests?: unknown[] }).manifests ?? []) : [];
    return [...tags.filter((t) => t.startsWith(`sha256-${digest.slice(7)}`)), ...manifests.map(() => 'referrer')];
  };

  before(async () => {
    const keysDir = tempDir('stv-verdict-keys-');
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: PASSWORD },
    });
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({
        default: 'release',
        keys: [{ name: 'release', key: join(keysDir, 'release.key'), password_env: 'STV_VERDICT_COSIGN_PASSWORD' }],
      }),
    );
    const cacheDir = await makeTrivyCache();
    stack = await startStack({ overrides: { trivy: { cacheDir, dbUpdate: false }, signing: { offline: true, keysFile } } });
    server = stack.app.getHttpServer();
    redis = new Redis(stack.redisUrl);
    registry = new RegistryClient(stack.registry.address);
    // The base image (an index: linux/amd64 + linux/arm64) under a repository of its own.
    await registry.pushLayout(baseLayoutDir(CACHE_DIR), 'team/app', '1');
    digest = (await registry.manifestDigest('team/app', '1'))!;
    image = `${stack.registry.address}/team/app:1`;
    const key = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'team-b', scopes: ['jobs:read', 'jobs:write'] })
        .expect(201)
    ).body.key as string;
    teamB = { authorization: `Bearer ${key}` };
    await put('fixable-only', { only_fixable: true, max_critical: 0 }).expect(201);
    await put('no-critical', { max_critical: 0 }).expect(201);
  });
  after(async () => {
    redis?.disconnect();
    await stack?.stop();
  });

  it('answers from the latest scan: passes and fails as each policy says, per platform, like the scan gate', async () => {
    scanJob = await scanImage();
    const record = (await request(server).get(`/v1/images/${digest}`).set(AUTH).expect(200)).body;
    assert.equal(record.latest_scan.job_id, scanJob.id);

    const pass = (await verdict('fixable-only').expect(200)).body;
    assert.equal(pass.passed, true, JSON.stringify(pass.violations));
    assert.deepEqual(pass.policy, { name: 'fixable-only', version: 1 });
    assert.deepEqual(
      [pass.digest, pass.scan_job_id, pass.scanned_at, pass.db_updated_at],
      [digest, scanJob.id, record.latest_scan.scanned_at, record.latest_scan.db_updated_at],
    );
    assert.deepEqual(
      pass.platforms.map((p: any) => [p.platform, p.report, p.manifest_digest]),
      scanJob.result.platforms.map((p: any) => [p.platform, p.artifacts.report, p.manifest_digest]),
    );
    assert.equal(pass.platforms.length, 2);
    assert.ok(
      pass.platforms.every((p: any) => p.not_counted.unfixed >= 1),
      'zlib and apt have no fix: left out',
    );

    const fail = (await verdict('no-critical').expect(200)).body;
    assert.equal(fail.passed, false);
    assert.deepEqual(fail.rules_failed, ['max_critical']);
    assert.deepEqual(
      fail.violations.map((v: any) => [v.platform, v.id, v.rule]),
      pass.platforms.map((p: any) => [p.platform, ZLIB, 'max_critical=0']),
    );
    // The same judgement as a scan gated by the same policy (here answered from the scan cache).
    const gated = await submit({ action: 'scan', image, scanners: ['vuln'], policy: 'no-critical' });
    assert.deepEqual(
      gated.result.policy.violations.map((v: any) => [v.platform, v.id, v.rule]),
      fail.violations.map((v: any) => [v.platform, v.id, v.rule]),
    );
  });

  it('an exception scoped to the repository turns a failing verdict into a pass, naming which exception allowed what', async () => {
    const exception = (
      await request(server)
        .post('/v1/exceptions')
        .set(AUTH)
        .send({
          vulnerability_id: ZLIB,
          scope: { repository: 'team/*' },
          reason: 'not reachable',
          owner: 'alice@example.com',
          expires: inDays(30),
        })
        .expect(201)
    ).body;
    const excused = (await verdict('no-critical').expect(200)).body;
    assert.equal(excused.passed, true, JSON.stringify(excused.violations));
    assert.deepEqual(excused.allowed, [
      { id: ZLIB, reason: 'not reachable', expires: exception.expires, exception_id: exception.id, owner: 'alice@example.com' },
    ]);
    assert.ok(excused.platforms.every((p: any) => p.allowed[0]?.exception_id === exception.id));
    // Another tenant's exception for the same repository is not ours.
    await request(server).delete(`/v1/exceptions/${exception.id}`).set(AUTH).expect(204);
    await request(server)
      .post('/v1/exceptions')
      .set(teamB)
      .send({ vulnerability_id: ZLIB, scope: { repository: 'team/*' }, reason: 'theirs', owner: 'bob@example.com', expires: inDays(30) })
      .expect(201);
    const again = (await verdict('no-critical').expect(200)).body;
    assert.equal(again.passed, false);
    assert.deepEqual(again.allowed, []);
  });

  it('keeps to the tenant and refuses bad input: 404 for another tenant, an unknown policy; 400 for a bad digest or name', async () => {
    const missing = (await verdict('no-critical', AUTH, `sha256:${'0'.repeat(64)}`).expect(404)).body.error;
    await put('no-critical', { max_critical: 0 }, teamB).expect(201);
    const theirs = (await verdict('no-critical', teamB).expect(404)).body.error;
    assert.equal(theirs.code, 'IMAGE_NOT_FOUND');
    assert.deepEqual([theirs.code, theirs.details], [missing.code, missing.details], 'the same answer as for a digest no one has');
    assert.equal((await verdict('nope').expect(404)).body.error.code, 'POLICY_NOT_FOUND');

    const badDigest = (await request(server).get('/v1/images/sha256:xyz/verdict?policy=no-critical').set(AUTH).expect(400)).body.error;
    assert.deepEqual([badDigest.code, badDigest.details.fields[0].path], ['VALIDATION_FAILED', 'digest']);
    for (const query of ['', '?policy=Bad_Name', '?policy=no-critical&extra=1', '?policy=a&policy=b']) {
      const err = (await request(server).get(`/v1/images/${digest}/verdict${query}`).set(AUTH).expect(400)).body.error;
      assert.equal(err.code, 'VALIDATION_FAILED', query);
    }
  });

  it('answers passed:false for a digest never scanned (no_scan) and for a scan whose reports are gone (scan_unavailable)', async () => {
    const store = new CatalogueStore(redis, 90);
    const at = new Date().toISOString();
    const seen = { tenant: 'default', at, repository: `${stack.registry.address}/team/other`, repositories: [], references: [] };
    const never = `sha256:${'1'.repeat(64)}`;
    await store.apply({ ...seen, digest: never });
    const unscanned = (await verdict('fixable-only', AUTH, never).expect(200)).body;
    assert.deepEqual([unscanned.passed, unscanned.rules_failed, unscanned.scanned_at], [false, ['no_scan'], null]);

    const gone = `sha256:${'2'.repeat(64)}`;
    const summary = { critical: 0, high: 0, medium: 0, low: 0, unknown: 0, fixable: 0 };
    const scan = {
      job_id: '00000000-0000-4000-8000-00000000dead',
      scanned_at: at,
      db_updated_at: null,
      summary,
      policy: { passed: true, violations: 0 },
    };
    await store.apply({ ...seen, digest: gone, scan: { ...scan, platforms: ['linux/amd64'], reports: ['trivy-report.json'] } });
    const unavailable = (await verdict('fixable-only', AUTH, gone).expect(200)).body;
    assert.deepEqual([unavailable.passed, unavailable.rules_failed], [false, ['scan_unavailable']]);
    assert.match(unavailable.violations[0].detail, /gone/);
  });

  it('sign with a max_scan_age the scan does not meet: POLICY_FAILED, nothing signed; after a fresh scan it signs', async () => {
    await put('recent', { max_scan_age: '1h' }).expect(201);
    await request(server).post('/v1/jobs').set(AUTH).send({ action: 'sign', image, policy: 'nope' }).expect(400);
    // The latest scan made three hours old: its record says so (the reports stay what they are).
    const key = `stv:image:default:${digest}`;
    const scan = JSON.parse((await redis.hget(key, 'scan'))!);
    const old = new Date(Date.now() - 3 * 3_600_000).toISOString();
    await redis.hset(key, 'scan', JSON.stringify({ ...scan, scanned_at: old }), 'scan@', old);

    const refused = await submit({ action: 'sign', image, policy: 'recent' });
    assert.equal(refused.state, 'failed');
    assert.equal(refused.error.code, 'POLICY_FAILED');
    assert.match(refused.error.message, /nothing was signed/);
    assert.deepEqual(refused.error.details.rules_failed, ['max_scan_age']);
    assert.ok(refused.error.details.scan_age_seconds >= 3 * 3600 - 5, JSON.stringify(refused.error.details));
    assert.equal(refused.error.details.scanned_at, old);
    assert.deepEqual(refused.request.policy_snapshot.rules, { max_scan_age: '1h' });
    assert.deepEqual(await signatureArtifacts('team/app'), [], 'no signature in the registry');
    const unsigned = await submit({ action: 'verify', image });
    assert.equal(unsigned.result.verification.verified, false);
    assert.deepEqual((await request(server).get(`/v1/images/${digest}`).set(AUTH).expect(200)).body.signatures, []);

    await scanImage();
    const signed = await submit({ action: 'sign', image, policy: 'recent' });
    assert.equal(signed.state, 'succeeded', JSON.stringify(signed.error));
    assert.equal(signed.result.signed.digest, digest);
    assert.notDeepEqual(await signatureArtifacts('team/app'), [], 'the signature is there now');
    const verified = await submit({ action: 'verify', image });
    assert.equal(verified.result.verification.verified, true, JSON.stringify(verified.result.verification));
  });

  it('push with a policy copies only what passes it', async () => {
    const refused = await submit({ action: 'push', image, destinations: [`${stack.registry.address}/prod/app:1`], policy: 'no-critical' });
    assert.equal(refused.state, 'failed');
    assert.equal(refused.error.code, 'POLICY_FAILED');
    assert.deepEqual(refused.error.details.rules_failed, ['max_critical']);
    assert.equal(await registry.manifestDigest('prod/app', '1'), undefined, 'nothing copied');

    const copied = await submit({ action: 'push', image, destinations: [`${stack.registry.address}/prod/app:1`], policy: 'fixable-only' });
    assert.equal(copied.state, 'succeeded', JSON.stringify(copied.error));
    assert.equal(await registry.manifestDigest('prod/app', '1'), digest);
  });
});
