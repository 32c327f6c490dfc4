import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { ExceptionStore } from '../../src/exceptions/exception-store.js';
import { ExceptionSweeper } from '../../src/exceptions/exception-sweeper.js';
import type { TenantEvents, TenantEventType } from '../../src/webhooks/tenant-events.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const inDays = (days: number) => new Date(Date.now() + days * 86_400_000).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls a job with the key of its own tenant until it ends. */
async function waitForJob(server: any, id: string, auth: Record<string, string>, timeoutMs = 300_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await request(server).get(`/v1/jobs/${id}`).set(auth).expect(200)).body;
    if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}`);
    await sleep(200);
  }
}

/** Real Redis, registry and Trivy (the project's test DB): exceptions through the API, applied by a real scan's gate. */
describe('exceptions as records, applied by real scans', () => {
  let stack: Stack;
  let server: any;
  let image: string;
  let otherAuth: Record<string, string>;
  let readerAuth: Record<string, string>;
  /** What the gate of a strict policy refuses on this image, without exceptions. */
  let violating: string[];
  const policy = { max_critical: 0, max_high: 0, max_medium: 0, max_low: 0 };
  const scan = async (auth: Record<string, string> = AUTH) => {
    const id = (
      await request(server)
        .post('/v1/jobs')
        .set(auth)
        .send({ action: 'scan', image, platform: 'linux/amd64', scanners: ['vuln'], policy })
        .expect(202)
    ).body.id;
    const job = await waitForJob(server, id, auth);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    return job.result;
  };
  const create = (body: object, auth: Record<string, string> = AUTH) => request(server).post('/v1/exceptions').set(auth).send(body);
  const except = async (vulnerability_id: string, scope: object, expires = inDays(30), auth: Record<string, string> = AUTH) =>
    (await create({ vulnerability_id, scope, reason: 'reviewed: not reachable', owner: 'alice@example.com', expires }, auth).expect(201))
      .body;
  const removeAll = async () => {
    for (const e of (await request(server).get('/v1/exceptions').set(AUTH).expect(200)).body.items)
      await request(server).delete(`/v1/exceptions/${e.id}`).set(AUTH).expect(204);
  };

  before(async () => {
    const cacheDir = await makeTrivyCache();
    // The app's own sweeper waits an hour: the test sweeps by hand to watch each announcement.
    stack = await startStack({
      overrides: { trivy: { cacheDir, dbUpdate: false }, exceptions: { maxDays: 365, maxPerTenant: 50, sweepMs: 3_600_000 } },
    });
    server = stack.app.getHttpServer();
    image = `${stack.registry.address}/library/debian:bookworm-slim`;
    const key = async (tenant: string, scopes: string[]) =>
      (await request(server).post('/v1/api-keys').set(AUTH).send({ tenant, scopes }).expect(201)).body.key as string;
    otherAuth = { authorization: `Bearer ${await key('team-b', ['jobs:read', 'jobs:write'])}` };
    readerAuth = { authorization: `Bearer ${await key('default', ['jobs:read'])}` };
  });
  after(async () => stack?.stop());

  it('a scan fails its gate; exceptions scoped to the repository make it pass and the verdict names them', async () => {
    const failed = await scan();
    assert.equal(failed.policy.passed, false);
    violating = [...new Set<string>(failed.policy.violations.map((v: any) => v.id))];
    assert.ok(violating.includes('CVE-2011-3374'), JSON.stringify(violating));

    const made = new Map<string, string>();
    for (const id of violating) made.set(id, (await except(id, { repository: 'library/*' })).id);
    const passed = await scan();
    assert.equal(passed.policy.passed, true, JSON.stringify(passed.policy.violations));
    assert.equal(passed.cached, false, 'another VEX document: scanned again');
    for (const id of violating) {
      const entry = passed.policy.allowed.find((a: any) => a.id === id);
      assert.equal(entry?.exception_id, made.get(id), JSON.stringify(passed.policy.allowed));
      assert.equal(entry.owner, 'alice@example.com');
    }
    // Trivy applied the VEX document: the findings carry its status.
    const apt = passed.vulnerabilities.find((v: any) => v.id === 'CVE-2011-3374');
    assert.equal(apt.status, 'not_affected', JSON.stringify(apt));
    assert.equal(apt.vex.status, 'not_affected');
    assert.ok(passed.artifacts.includes('vex.openvex.json'));

    // Another tenant's gate is its own: team-b's scan of the same image still fails.
    assert.equal((await scan(otherAuth)).policy.passed, false);
    await removeAll();
  });

  it('an exception for another repository, or one that expired, does not apply', async () => {
    for (const id of violating) await except(id, { repository: 'team/*' });
    assert.equal((await scan()).policy.passed, false);
    await removeAll();

    const soon = new Date(Date.now() + 2_000).toISOString();
    for (const id of violating) await except(id, { repository: 'library/debian' }, soon);
    await sleep(Math.max(0, Date.parse(soon) - Date.now()) + 200);
    const result = await scan();
    assert.equal(result.policy.passed, false);
    assert.ok(!result.policy.allowed.some((a: any) => a.exception_id), JSON.stringify(result.policy.allowed));
    const listed = (await request(server).get('/v1/exceptions').set(AUTH).expect(200)).body.items;
    assert.ok(listed.length === violating.length && listed.every((e: any) => e.status === 'expired'));

    // Two sweepers on the real Redis: one exception.expired per exception, then marked.
    const events: { tenant: string; type: TenantEventType; data: Record<string, unknown> }[] = [];
    const recording: TenantEvents = { publish: async (tenant, type, data) => void events.push({ tenant, type, data }) };
    const redis = new Redis(stack.redisUrl, { lazyConnect: false });
    try {
      const sweepers = [0, 1].map(() => new ExceptionSweeper(new ExceptionStore(redis, 50), recording, { intervalMs: 60_000, batch: 100 }));
      await Promise.all([...sweepers, ...sweepers].map((s) => s.sweep()));
      await Promise.all(sweepers.map((s) => s.sweep()));
    } finally {
      redis.disconnect();
    }
    assert.deepEqual(
      events.map((e) => [e.tenant, e.type, e.data.exception_id]).sort(),
      listed.map((e: any) => ['default', 'exception.expired', e.id]).sort(),
    );
    for (const e of listed) {
      const got = (await request(server).get(`/v1/exceptions/${e.id}`).set(AUTH).expect(200)).body;
      assert.match(got.expired_notified_at, /^\d{4}-/);
    }
    await removeAll();
  });

  it('a digest scope applies to that image; OpenVEX export imports back; Trivy honours the imported digest', async () => {
    const digest = (await scan()).platforms[0].manifest_digest;
    await except(violating[0]!, { digest });
    await except(violating[0]!, { repository: 'library/**' });
    const doc = (await request(server).get('/v1/exceptions.openvex').set(readerAuth).expect(200)).body;
    assert.equal(doc['@context'], 'https://openvex.dev/ns/v0.2.0');
    assert.equal(doc.statements.length, 2);
    assert.deepEqual(doc.statements.map((s: any) => s.products[0]['@id']).sort(), [
      `urn:stevedore:digest:${digest}`,
      'urn:stevedore:repository:library/**',
    ]);
    await removeAll();

    const imported = (
      await request(server)
        .post(`/v1/vex?expires=${inDays(10)}`)
        .set(AUTH)
        .send(doc)
        .expect(201)
    ).body;
    assert.equal(imported.items.length, 2);
    assert.ok(imported.items.every((e: any) => e.source === 'openvex' && e.owner === 'stevedore tenant default'));
    await removeAll();

    // A vendor document naming the image by purl, one statement per violating finding.
    const vendor = {
      '@context': 'https://openvex.dev/ns/v0.2.0',
      '@id': 'https://vendor.example/vex/1',
      author: 'Vendor PSIRT',
      timestamp: new Date().toISOString(),
      version: 1,
      statements: violating.map((id) => ({
        vulnerability: { name: id },
        products: [{ '@id': `pkg:oci/debian@${digest.replace(':', '%3A')}` }],
        status: 'not_affected',
        justification: 'vulnerable_code_not_in_execute_path',
      })),
    };
    const created = (
      await request(server)
        .post(`/v1/vex?expires=${inDays(10)}`)
        .set(AUTH)
        .send(vendor)
        .expect(201)
    ).body;
    assert.deepEqual(
      created.items.map((e: any) => e.scope),
      violating.map(() => ({ digest })),
    );
    const passed = await scan();
    assert.equal(passed.policy.passed, true, JSON.stringify(passed.policy.violations));
    assert.ok(passed.policy.allowed.every((a: any) => a.owner === 'Vendor PSIRT'));
    await removeAll();
  });

  it('keeps every endpoint to its tenant: another tenant gets 404 as for a missing id', async () => {
    const mine = await except('CVE-2011-3374', { repository: 'library/*' });
    await request(server).get(`/v1/exceptions/${mine.id}`).set(otherAuth).expect(404);
    await request(server).delete(`/v1/exceptions/${mine.id}`).set(otherAuth).expect(404);
    const missing = await request(server).get('/v1/exceptions/00000000-0000-4000-8000-000000000000').set(AUTH).expect(404);
    const theirs = await request(server).get(`/v1/exceptions/${mine.id}`).set(otherAuth).expect(404);
    assert.deepEqual(Object.keys(theirs.body.error).sort(), Object.keys(missing.body.error).sort());
    assert.equal((await request(server).get('/v1/exceptions').set(otherAuth).expect(200)).body.items.length, 0);
    assert.equal((await request(server).get('/v1/exceptions.openvex').set(otherAuth).expect(200)).body.statements.length, 0);
    const b = await except('CVE-2011-3374', { repository: 'library/*' }, inDays(5), otherAuth);
    assert.deepEqual(
      (await request(server).get('/v1/exceptions').set(AUTH).expect(200)).body.items.map((e: any) => e.id),
      [mine.id],
    );
    await request(server).get(`/v1/exceptions/${b.id}`).set(AUTH).expect(404);
    await request(server).get(`/v1/exceptions/${mine.id}`).set(readerAuth).expect(200);
    await request(server).delete(`/v1/exceptions/${mine.id}`).set(AUTH).expect(204);
    await request(server).delete(`/v1/exceptions/${mine.id}`).set(AUTH).expect(404);
  });

  it('answers bad input with 4xx and a field', async () => {
    const ok = { vulnerability_id: 'CVE-2021-23337', scope: { repository: 'team/*' }, reason: 'r', owner: 'o', expires: inDays(10) };
    const bad = async (body: object, field: string) => {
      const res = await create(body).expect(400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      assert.ok(
        res.body.error.details.fields.some((f: any) => f.path === field),
        JSON.stringify(res.body.error),
      );
    };
    await bad({ ...ok, vulnerability_id: 'CVE-1-1' }, 'vulnerability_id');
    await bad({ ...ok, scope: { repository: 'team/(a|b)*' } }, 'scope.repository');
    await bad({ ...ok, scope: { repository: 'team/app', digest: `sha256:${'a'.repeat(64)}` } }, 'scope');
    await bad({ ...ok, expires: '2020-01-01' }, 'expires');
    await bad({ ...ok, expires: inDays(400) }, 'expires');
    await bad({ ...ok, owner: '' }, 'owner');
    await bad({ ...ok, reason: 'x'.repeat(2000) }, 'reason');
    const { expires: _e, ...noExpiry } = ok;
    await bad(noExpiry, 'expires');
    await request(server).get('/v1/exceptions/not-a-uuid').set(AUTH).expect(400);
    await request(server).post('/v1/exceptions').send(ok).expect(401);
    await create(ok, readerAuth).expect(403);
    await request(server)
      .post(`/v1/vex?expires=${inDays(10)}`)
      .set(AUTH)
      .send({ author: 'x', statements: [] })
      .expect(400);
    await request(server)
      .post('/v1/vex')
      .set(AUTH)
      .send({ '@context': 'https://openvex.dev/ns/v0.2.0', author: 'x', statements: [] })
      .expect(400);
    const huge = { '@context': 'https://openvex.dev/ns/v0.2.0', author: 'x', statements: [], pad: 'x'.repeat(600 * 1024) };
    await request(server)
      .post(`/v1/vex?expires=${inDays(10)}`)
      .set(AUTH)
      .send(huge)
      .expect(413);
    // The per-tenant cap (50 here): all or nothing.
    const many = {
      '@context': 'https://openvex.dev/ns/v0.2.0',
      author: 'x',
      statements: Array.from({ length: 51 }, (_, i) => ({
        vulnerability: { name: `CVE-2024-${String(10000 + i)}` },
        products: [{ '@id': 'urn:stevedore:repository:team/app' }],
        status: 'not_affected',
      })),
    };
    assert.equal(
      (
        await request(server)
          .post(`/v1/vex?expires=${inDays(10)}`)
          .set(AUTH)
          .send(many)
          .expect(429)
      ).body.error.code,
      'EXCEPTION_LIMIT',
    );
    assert.equal((await request(server).get('/v1/exceptions').set(AUTH).expect(200)).body.items.length, 0);
  });
});
