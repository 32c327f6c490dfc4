import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { dbTarGz } from '../support/trivy-db-artifact.js';
import { makeTrivyCache, VARIANT_2_CHANGES } from '../support/trivy-db.js';
import { AUTH, freePort, startStack, type Stack } from '../support/stack.js';
import { Receiver, until, verifyWebhook } from '../support/webhook-receiver.js';

const ids = (list: readonly { id: string }[]) => list.map((f) => f.id).sort();
const DB = VARIANT_2_CHANGES.updatedAt;

/**
 * Continuous assurance end to end (issue 19), with real Trivy, registry, Redis and a
 * real webhook receiver: scan with the first test DB, load the second through the admin
 * endpoint and, with no other request, see the catalogued digest rescanned from its
 * stored SBOM, the catalogue's new summary, a signed `image.vulnerabilities.changed`
 * with exactly the introduced and resolved ids, and a named policy's verdict flip; an
 * exception flips it back, its expiry flips it again and sends `exception.expired`.
 */
describe('rescans when the vulnerability DB changes', () => {
  let stack: Stack;
  let server: any;
  let receiver: Receiver;
  let image: string;
  let digest: string;
  const b = { authorization: '' };
  const c = { authorization: '' };
  const job = async (id: string, auth = AUTH) => (await request(server).get(`/v1/jobs/${id}`).set(auth).expect(200)).body;
  const finished = (id: string, auth = AUTH) =>
    until(
      `job ${id}`,
      async () => {
        const j = await job(id, auth);
        return ['succeeded', 'failed', 'cancelled', 'timed_out'].includes(j.state) ? j : undefined;
      },
      240_000,
    );
  const scan = async (auth = AUTH) => {
    const id = (
      await request(server)
        .post('/v1/jobs')
        .set(auth)
        .send({ action: 'scan', image, platform: 'linux/amd64', scanners: ['vuln'] })
        .expect(202)
    ).body.id;
    const done = await finished(id, auth);
    assert.equal(done.state, 'succeeded', JSON.stringify(done.error));
    return done;
  };
  const record = async (auth = AUTH) => (await request(server).get(`/v1/images/${digest}`).set(auth).expect(200)).body;
  const verdict = async (auth = AUTH) => (await request(server).get(`/v1/images/${digest}/verdict?policy=prod`).set(auth).expect(200)).body;
  const secret = async (auth = AUTH) => (await request(server).get('/v1/webhooks/secret').set(auth).expect(200)).body.secret as string;
  const hits = (path: string, type: string) =>
    receiver.received.filter((r) => r.path === path).filter((r) => (JSON.parse(r.body) as { type: string }).type === type);

  before(async () => {
    receiver = new Receiver(await freePort());
    await receiver.up();
    stack = await startStack({
      overrides: {
        trivy: { cacheDir: await makeTrivyCache({ variant: 1 }), dbUpdate: false },
        webhooks: { allowedHosts: ['127.0.0.1'], attempts: 4, retryBaseMs: 300, timeoutMs: 2_000 },
        exceptions: { maxDays: 365, maxPerTenant: 50, sweepMs: 500 },
        // Only the admin load wakes the scheduler here: the interval would be a test of the clock.
        rescan: { intervalMs: 3_600_000, concurrency: 1 },
      },
    });
    server = stack.app.getHttpServer();
    image = `${stack.registry.address}/library/debian:bookworm-slim`;
    const key = async (tenant: string) =>
      `Bearer ${
        (
          await request(server)
            .post('/v1/api-keys')
            .set(AUTH)
            .send({ tenant, scopes: ['jobs:read', 'jobs:write', 'secrets:write'] })
            .expect(201)
        ).body.key
      }`;
    b.authorization = await key('rescan-b');
    c.authorization = await key('rescan-c');
    const events = ['image.vulnerabilities.changed', 'exception.expired'];
    await request(server)
      .put('/v1/webhooks/endpoint')
      .set(AUTH)
      .send({ url: receiver.urlFor('/a'), events })
      .expect(201);
    await request(server)
      .put('/v1/webhooks/endpoint')
      .set(b)
      .send({ url: receiver.urlFor('/b'), events })
      .expect(201);
  });
  after(async () => {
    await receiver?.down();
    await stack?.stop();
  });

  it('scans with the first DB: catalogued with its SBOM, and the named policy passes', async () => {
    const first = await scan();
    digest = first.result.image_info.digest;
    await scan(b);
    const rec = await record();
    assert.equal(rec.latest_scan.db_updated_at, DB[1]);
    assert.ok(rec.sbom?.platforms.length, 'the scan stored an SBOM to rescan from');
    // tar's HIGH finding is allowed by the policy; zlib's CRITICAL has no fix (only_fixable).
    const rules = { max_critical: 0, max_high: 0, only_fixable: true, allow: [{ id: 'CVE-2019-9923', reason: 'tar is not run' }] };
    await request(server).put('/v1/policies/prod').set(AUTH).send(rules).expect(201);
    assert.equal((await verdict()).passed, true, JSON.stringify(await verdict()));
  });

  it('loading the second DB rescans the digest from its SBOM, for each tenant, and sends exactly what changed', async () => {
    await request(server)
      .put('/v1/system/trivy-db')
      .set(AUTH)
      .set('content-type', 'application/gzip')
      .send(await dbTarGz({ variant: 2 }))
      .expect(200);
    const rec = await until(
      'the rescan',
      async () => ((await record()).latest_scan.db_updated_at === DB[2] ? record() : undefined),
      180_000,
    );
    assert.ok(rec.latest_scan.summary.high >= 1, JSON.stringify(rec.latest_scan.summary));

    const rescan = await job(rec.latest_scan.job_id);
    assert.equal(rescan.origin.kind, 'rescan');
    assert.equal(rescan.origin.db_updated_at, DB[2]);
    assert.deepEqual(ids(rescan.result.diff.introduced), ids(VARIANT_2_CHANGES.introduced));
    assert.deepEqual(ids(rescan.result.diff.resolved), ids(VARIANT_2_CHANGES.resolved));
    const events = (await request(server).get(`/v1/jobs/${rescan.id}/events?follow=false`).set(AUTH).expect(200)).text;
    assert.match(events, /from its stored SBOM/, 'scanned from the SBOM, no layer pulled');

    const hit = await until('image.vulnerabilities.changed for tenant a', () => hits('/a', 'image.vulnerabilities.changed')[0], 60_000);
    const sent = verifyWebhook(await secret(), hit);
    assert.equal(sent.data.digest, digest);
    assert.deepEqual(ids(sent.data.introduced as { id: string }[]), ['CVE-2022-3715']);
    assert.deepEqual(ids(sent.data.resolved as { id: string }[]), ['CVE-2019-9923']);
    assert.deepEqual(sent.data.db, { previous: DB[1], current: DB[2] });

    // Tenant b scanned the same digest: its own rescan, its own event, signed with its own secret.
    const hitB = await until('image.vulnerabilities.changed for tenant b', () => hits('/b', 'image.vulnerabilities.changed')[0], 120_000);
    const sentB = verifyWebhook(await secret(b), hitB);
    assert.notEqual(sentB.data.job_id, sent.data.job_id);
    const secretA = await secret();
    assert.throws(() => verifyWebhook(secretA, hitB), "tenant a's secret does not sign tenant b's events");
    await request(server)
      .get(`/v1/jobs/${String(sentB.data.job_id)}`)
      .set(AUTH)
      .expect(404);
    assert.equal(hits('/a', 'image.vulnerabilities.changed').length, 1, 'one event per tenant and digest');
  });

  it('the verdict flips; an exception turns it back; its expiry flips it again and sends exception.expired', async () => {
    const failed = await verdict();
    assert.equal(failed.passed, false);
    assert.ok(JSON.stringify(failed).includes('CVE-2022-3715'), JSON.stringify(failed));
    const expires = new Date(Date.now() + 5_000).toISOString();
    const exception = (
      await request(server)
        .post('/v1/exceptions')
        .set(AUTH)
        .send({
          vulnerability_id: 'CVE-2022-3715',
          scope: { repository: 'library/debian' },
          reason: 'bash is not run',
          owner: 'sec@example.com',
          expires,
        })
        .expect(201)
    ).body;
    const excepted = await verdict();
    assert.equal(excepted.passed, true, JSON.stringify(excepted));
    assert.ok(JSON.stringify(excepted).includes(exception.id), 'the verdict names the exception that allowed the finding');
    const expired = await until('exception.expired', () => hits('/a', 'exception.expired')[0], 60_000);
    assert.equal(verifyWebhook(await secret(), expired).data.exception_id, exception.id);
    assert.equal((await verdict()).passed, false);
  });

  it('keeps every tenant to its own images, verdicts and rescans', async () => {
    await request(server).get(`/v1/images/${digest}`).set(c).expect(404);
    await request(server).get(`/v1/images/${digest}/verdict?policy=prod`).set(c).expect(404);
    await request(server).get(`/v1/images/${digest}/verdict?policy=prod`).set(b).expect(404); // b has no policy "prod"
    const listed = (await request(server).get('/v1/jobs?action=scan').set(c).expect(200)).body.items;
    assert.equal(listed.length, 0);
    assert.equal(receiver.received.filter((r) => r.path === '/c').length, 0);
    // Only the server queues rescans: a client cannot claim one (nor another job's artifacts through it).
    const forged = await request(server)
      .post('/v1/jobs')
      .set(c)
      .send({ action: 'scan', image, origin: { kind: 'rescan', previous: { job_id: digest } } })
      .expect(400);
    assert.equal(forged.body.error.code, 'VALIDATION_FAILED');
  });
});
