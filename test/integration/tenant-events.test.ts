import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { TENANT_EVENTS, type TenantEvents } from '../../src/webhooks/tenant-events.js';
import { AUTH, freePort, startStack, type Stack } from '../support/stack.js';
import { Receiver, until, verifyWebhook as verify } from '../support/webhook-receiver.js';

const CHANGED = {
  digest: `sha256:${'b'.repeat(64)}`,
  repository: 'library/app',
  introduced: [{ id: 'CVE-2026-0001', package: 'libfoo', severity: 'HIGH' }],
  resolved: [{ id: 'CVE-2025-0002', package: 'libbar', severity: 'MEDIUM' }],
  severity_changed: [],
};

describe('tenant webhook endpoint and tenant events, with real Redis and a real receiver', () => {
  let stack: Stack;
  let server: any;
  let receiver: Receiver;
  let events: TenantEvents;
  let other: { authorization: string };
  const secret = async (auth = AUTH) => (await request(server).get('/v1/webhooks/secret').set(auth).expect(200)).body.secret as string;
  const putEndpoint = (body: object, auth = AUTH) => request(server).put('/v1/webhooks/endpoint').set(auth).send(body);
  const detail = async (id: string, auth = AUTH) => (await request(server).get(`/v1/webhooks/deliveries/${id}`).set(auth).expect(200)).body;
  const listed = async (auth = AUTH) => (await request(server).get('/v1/webhooks/deliveries').set(auth).expect(200)).body.items as any[];
  const key = async (tenant: string, scopes: string[]) =>
    `Bearer ${(await request(server).post('/v1/api-keys').set(AUTH).send({ tenant, scopes }).expect(201)).body.key}`;

  before(async () => {
    receiver = new Receiver(await freePort());
    await receiver.up();
    stack = await startStack({ overrides: { webhooks: { allowedHosts: ['127.0.0.1'], attempts: 6, retryBaseMs: 300, timeoutMs: 2_000 } } });
    server = stack.app.getHttpServer();
    events = stack.app.get<TenantEvents>(TENANT_EVENTS);
    other = { authorization: await key('events-b', ['jobs:read', 'jobs:write', 'secrets:write']) };
  });
  after(async () => {
    await receiver?.down();
    await stack?.stop();
  });

  it('sets, reads and deletes one endpoint per tenant, refusing unknown events and internal addresses', async () => {
    await request(server).get('/v1/webhooks/endpoint').set(AUTH).expect(404);
    for (const [body, path] of [
      [{ url: receiver.url, events: ['image.vulnerabilities.changed', 'job.succeeded'] }, 'events.1'],
      [{ url: receiver.url, events: [] }, 'events'],
      [{ url: receiver.url }, 'events'],
      [{ url: 'gopher://127.0.0.1/', events: ['exception.expired'] }, 'url'],
      [{ url: 'http://10.0.0.1/hook', events: ['exception.expired'] }, 'url'],
      [{ url: 'http://169.254.169.254/latest/meta-data/', events: ['exception.expired'] }, 'url'],
      [{ url: 'http://localhost:1/hook', events: ['exception.expired'] }, 'url'],
      [{ url: 'http://[::1]:8080/hook', events: ['exception.expired'] }, 'url'],
      [{ url: receiver.url, events: ['exception.expired'], secret: 'x' }, 'secret'],
    ] as const) {
      const res = await putEndpoint(body).expect(400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED', JSON.stringify(body));
      assert.equal(res.body.error.details.fields[0].path, path, JSON.stringify(body));
    }
    await request(server).get('/v1/webhooks/endpoint').set(AUTH).expect(404);
    const created = (await putEndpoint({ url: receiver.url, events: ['exception.expired'] }).expect(201)).body;
    assert.deepEqual([created.url, created.events], [receiver.url, ['exception.expired']]);
    const replaced = (await putEndpoint({ url: receiver.url, events: ['image.vulnerabilities.changed'] }).expect(200)).body;
    assert.equal(replaced.created_at, created.created_at);
    assert.deepEqual((await request(server).get('/v1/webhooks/endpoint').set(AUTH).expect(200)).body, replaced);
    await request(server).get('/v1/webhooks/endpoint').set(other).expect(404);
    await request(server).delete('/v1/webhooks/endpoint').set(other).expect(404);
    const readOnly = { authorization: await key('default', ['jobs:read']) };
    await putEndpoint({ url: receiver.url, events: ['exception.expired'] }, readOnly).expect(403);
    await request(server).delete('/v1/webhooks/endpoint').set(AUTH).expect(204);
    await request(server).get('/v1/webhooks/endpoint').set(AUTH).expect(404);
    await request(server).delete('/v1/webhooks/endpoint').set(AUTH).expect(404);
  });

  it('sends a signed event, retries a 500 with the same webhook-id, logs every attempt and redelivers on request', async () => {
    await putEndpoint({ url: receiver.url, events: ['image.vulnerabilities.changed'] }).expect(201);
    const whsec = await secret();
    receiver.status = 500;
    await events.publish('default', 'image.vulnerabilities.changed', CHANGED);
    const [item] = await listed();
    assert.equal(item.type, 'image.vulnerabilities.changed');
    assert.equal(item.webhook_id, `msg_${item.id}`);
    await until('two failed attempts', async () => ((await detail(item.id)).items.length >= 2 ? true : undefined));
    receiver.status = 200;
    const done = await until(
      'a successful attempt',
      async () => {
        const d = await detail(item.id);
        return d.items.at(-1)?.status_code === 200 ? d : undefined;
      },
      60_000,
    );
    assert.ok(done.items.length >= 3, `${done.items.length} attempts`);
    assert.ok(done.items.slice(0, -1).every((a: any) => a.status_code === 500 && a.error === 'receiver answered 500'));
    assert.deepEqual(
      done.items.map((a: any) => a.attempt),
      done.items.map((_: unknown, i: number) => i + 1),
    );
    assert.deepEqual([...new Set(done.items.map((a: any) => a.webhook_id))], [item.webhook_id]);
    assert.deepEqual(done.data, CHANGED);
    const hits = receiver.withId(item.webhook_id);
    assert.equal(hits.length, done.items.length);
    for (const hit of hits) {
      const event = verify(whsec, hit);
      assert.deepEqual(event, { type: 'image.vulnerabilities.changed', timestamp: item.timestamp, data: CHANGED });
      assert.equal(hit.body, hits[0]!.body, 'every attempt sends the same bytes');
    }
    assert.throws(() => verify('whsec_' + Buffer.alloc(32, 9).toString('base64'), hits[0]!), 'another secret does not verify');
    assert.ok(!hits[0]!.body.includes(whsec.slice(6)), 'the event never carries the secret');
    const summary = (await listed()).find((e) => e.id === item.id);
    assert.equal(summary.attempts, done.items.length);
    assert.equal(summary.last_attempt.status_code, 200);

    const again = (await request(server).post(`/v1/webhooks/deliveries/${item.id}/redeliver`).set(AUTH).expect(202)).body;
    assert.equal(again.webhook_id, item.webhook_id);
    const log = await until('the redelivery in the log', async () => {
      const d = await detail(item.id);
      return d.items.length > done.items.length ? d.items : undefined;
    });
    assert.deepEqual([log.at(-1).attempt, log.at(-1).status_code, log.at(-1).webhook_id], [done.items.length + 1, 200, item.webhook_id]);
    assert.equal(receiver.withId(item.webhook_id).at(-1)!.body, hits[0]!.body, 'a redelivery sends the same event');
  });

  it('sends nothing for a type the endpoint does not take, or to a tenant without an endpoint', async () => {
    const before = receiver.received.length;
    const countBefore = (await listed()).length;
    await events.publish('default', 'exception.expired', { exception_id: 'x' });
    await events.publish('events-b', 'image.vulnerabilities.changed', CHANGED);
    assert.equal((await listed()).length, countBefore);
    assert.deepEqual(await listed(other), []);
    // A subscribed event published after them arrives: had the others been queued, they would have too.
    await events.publish('default', 'image.vulnerabilities.changed', { marker: 1 });
    const [marker] = await listed();
    await until('the marker event', () => (receiver.withId(marker.webhook_id).length ? true : undefined));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(
      receiver.received.slice(before).map((r) => JSON.parse(r.body).type),
      ['image.vulnerabilities.changed'],
    );
  });

  it('keeps endpoints, events and deliveries per tenant: another tenant gets 404 and its own signature', async () => {
    const [mine] = await listed();
    await request(server).get(`/v1/webhooks/deliveries/${mine.id}`).set(other).expect(404);
    await request(server).post(`/v1/webhooks/deliveries/${mine.id}/redeliver`).set(other).expect(404);
    await request(server).get('/v1/webhooks/deliveries/evt_not-an-id').set(AUTH).expect(404);
    await request(server).get('/v1/webhooks/deliveries?limit=0').set(AUTH).expect(400);
    assert.deepEqual(await listed(other), []);

    const theirs = `${receiver.url}?tenant=b`;
    await putEndpoint({ url: theirs, events: ['image.vulnerabilities.changed'] }, other).expect(201);
    assert.equal((await request(server).get('/v1/webhooks/endpoint').set(AUTH).expect(200)).body.url, receiver.url);
    await events.publish('events-b', 'image.vulnerabilities.changed', { tenant_b: true });
    const [their] = await listed(other);
    assert.ok(!(await listed()).some((e) => e.id === their.id));
    const [hit] = await until('tenant b event', () =>
      receiver.withId(their.webhook_id).length ? receiver.withId(their.webhook_id) : undefined,
    );
    assert.deepEqual(verify(await secret(other), hit!).data, { tenant_b: true });
    const defaultSecret = await secret();
    assert.throws(() => verify(defaultSecret, hit!), "tenant b's event does not verify with default's secret");
    await request(server).delete('/v1/webhooks/endpoint').set(other).expect(204);
    const refused = await request(server).post(`/v1/webhooks/deliveries/${their.id}/redeliver`).set(other).expect(409);
    assert.equal(refused.body.error.code, 'NO_ENDPOINT');
  });
});
