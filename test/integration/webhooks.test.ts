import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import request from 'supertest';
import { AUTH, blackhole, freePort, startStack, type Stack } from '../support/stack.js';
import { until } from '../support/webhook-receiver.js';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real receiver on loopback that can answer 200, answer 500 or be down. */
class Receiver {
  received: Received[] = [];
  status = 200;
  private server?: Server;
  constructor(readonly port: number) {}
  get url() {
    return `http://127.0.0.1:${this.port}/hooks/stevedore`;
  }
  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, body });
        res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.status === 200 ? 'thanks' : 'receiver is broken');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async down(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }
  forJob(id: string): Received[] {
    return this.received.filter((r) => r.headers['webhook-id'] === `msg_${id}`);
  }
}

describe('signed job webhooks (Standard Webhooks) with real Redis, registry and workers', () => {
  let stack: Stack;
  let server: any;
  let receiver: Receiver;
  let hang: { address: string; close(): void };
  let image: string;
  const submit = (body: object, auth = AUTH) => request(server).post('/v1/jobs').set(auth).send(body);
  const secret = async (auth = AUTH) => (await request(server).get('/v1/webhooks/secret').set(auth).expect(200)).body.secret as string;
  const deliveries = async (id: string, auth = AUTH) =>
    (await request(server).get(`/v1/jobs/${id}/deliveries`).set(auth).expect(200)).body.items as any[];

  before(async () => {
    receiver = new Receiver(await freePort());
    await receiver.up();
    hang = await blackhole();
    stack = await startStack({
      overrides: {
        webhooks: { allowedHosts: ['127.0.0.1'], attempts: 8, retryBaseMs: 300, timeoutMs: 2_000 },
        registryAllowedHosts: [hang.address],
      },
    });
    server = stack.app.getHttpServer();
    image = `${stack.registry.address}/library/debian:bookworm-slim`;
  });
  after(async () => {
    hang?.close();
    await receiver?.down();
    await stack?.stop();
  });

  it('POSTs a signed job.succeeded / job.failed / job.cancelled event the tenant secret verifies', async () => {
    const whsec = await secret();
    assert.match(whsec, /^whsec_[A-Za-z0-9+/]{43}=$/);
    assert.equal(await secret(), whsec, 'the secret is stable until rotated');
    const ok = (await submit({ action: 'inspect', image, callback_url: receiver.url }).expect(202)).body.id;
    const failed = (
      await submit({ action: 'inspect', image: `${stack.registry.address}/no/such:image`, callback_url: receiver.url }).expect(202)
    ).body.id;
    const cancelled = (await submit({ action: 'inspect', image: `${hang.address}/slow/image:1`, callback_url: receiver.url }).expect(202))
      .body.id;
    await until(
      'the hanging job to run',
      async () => (await request(server).get(`/v1/jobs/${cancelled}`).set(AUTH)).body.state === 'running',
    );
    await request(server).post(`/v1/jobs/${cancelled}/cancel`).set(AUTH).expect(202);
    const timedOut = (
      await submit({ action: 'inspect', image: `${hang.address}/slow/image:2`, timeout_seconds: 1, callback_url: receiver.url }).expect(202)
    ).body.id;
    for (const [id, type, state] of [
      [ok, 'job.succeeded', 'succeeded'],
      [failed, 'job.failed', 'failed'],
      [cancelled, 'job.cancelled', 'cancelled'],
      [timedOut, 'job.timed_out', 'timed_out'],
    ] as const) {
      const [hit] = await until(`webhook of ${id}`, () => (receiver.forJob(id).length ? receiver.forJob(id) : undefined));
      const headers = {
        'webhook-id': String(hit!.headers['webhook-id']),
        'webhook-timestamp': String(hit!.headers['webhook-timestamp']),
        'webhook-signature': String(hit!.headers['webhook-signature']),
      };
      const event = new Webhook(whsec).verify(hit!.body, headers) as {
        type: string;
        timestamp: string;
        data: { job: { id: string; state: string; tenant: string } };
      };
      assert.equal(event.type, type);
      assert.equal(event.data.job.id, id);
      assert.equal(event.data.job.state, state);
      assert.ok(Date.parse(event.timestamp) > 0);
      assert.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/=]+$/);
      assert.throws(
        () => new Webhook('whsec_' + Buffer.alloc(32, 9).toString('base64')).verify(hit!.body, headers),
        'another secret does not verify',
      );
      const log = await until(`delivery log of ${id}`, async () => ((await deliveries(id)).length ? deliveries(id) : undefined));
      assert.equal(log[0].status_code, 200);
      assert.equal(log[0].attempt, 1);
      assert.equal(log[0].webhook_id, `msg_${id}`);
      assert.equal(log[0].error, null);
    }
  });

  it('keeps retrying with the same webhook-id while the receiver is down or failing, and completes when it is back', async () => {
    await receiver.down();
    const id = (await submit({ action: 'inspect', image, callback_url: receiver.url }).expect(202)).body.id;
    await until('two refused attempts', async () => ((await deliveries(id)).length >= 2 ? true : undefined));
    receiver.status = 500;
    await receiver.up();
    await until('a 500 attempt', async () => ((await deliveries(id)).some((d) => d.status_code === 500) ? true : undefined), 60_000);
    receiver.status = 200;
    const log = await until(
      'the delivery to succeed',
      async () => {
        const items = await deliveries(id);
        return items.at(-1)?.status_code === 200 ? items : undefined;
      },
      90_000,
    );
    assert.ok(log.length >= 4, `${log.length} attempts`);
    assert.ok(log.slice(0, -1).every((d) => d.status_code !== 200 && d.error));
    assert.match(log[0].error, /ECONNREFUSED/);
    assert.deepEqual([...new Set(log.map((d) => d.webhook_id))], [`msg_${id}`]);
    assert.deepEqual(
      log.map((d) => d.attempt),
      log.map((_, i) => i + 1),
    );
    assert.ok(receiver.forJob(id).every((r) => r.headers['webhook-id'] === `msg_${id}`) && receiver.forJob(id).length >= 2);
  });

  it('signs with both secrets for a day after a rotation, and redelivers on request', async () => {
    const old = await secret();
    const rotated = (await request(server).post('/v1/webhooks/secret/rotate').set(AUTH).expect(200)).body;
    assert.notEqual(rotated.secret, old);
    assert.ok(Date.parse(rotated.previous_valid_until) - Date.now() > 23 * 3600 * 1000);
    const id = (await submit({ action: 'inspect', image, callback_url: receiver.url }).expect(202)).body.id;
    const [hit] = await until('webhook after rotation', () => (receiver.forJob(id).length ? receiver.forJob(id) : undefined));
    const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(hit!.headers[h])]));
    assert.equal(headers['webhook-signature']!.split(' ').length, 2);
    for (const s of [old, rotated.secret]) new Webhook(s).verify(hit!.body, headers);
    const again = (await request(server).post(`/v1/jobs/${id}/deliveries/redeliver`).set(AUTH).expect(202)).body;
    assert.equal(again.webhook_id, `msg_${id}`);
    await until('the redelivery', () => (receiver.forJob(id).length >= 2 ? true : undefined));
    const log = await until('two log entries', async () => ((await deliveries(id)).length >= 2 ? deliveries(id) : undefined));
    assert.deepEqual(
      log.map((d) => [d.attempt, d.webhook_id, d.status_code]),
      [
        [1, `msg_${id}`, 200],
        [2, `msg_${id}`, 200],
      ],
    );
    assert.equal(receiver.forJob(id)[1]!.body, receiver.forJob(id)[0]!.body, 'a redelivery sends the same event');
    const plain = (await submit({ action: 'inspect', image }).expect(202)).body.id;
    assert.equal(
      (await request(server).post(`/v1/jobs/${plain}/deliveries/redeliver`).set(AUTH).expect(409)).body.error.code,
      'NO_CALLBACK',
    );
  });

  it('refuses callbacks to internal addresses at submission, and keeps deliveries and secrets per tenant', async () => {
    for (const url of [
      'http://10.0.0.1/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://localhost:1/hook',
      'http://[::1]:8080/hook',
      'http://[::ffff:127.0.0.1]/hook',
      'http://192.168.0.10/',
      'gopher://127.0.0.1/',
    ]) {
      const res = await submit({ action: 'inspect', image, callback_url: url }).expect(400);
      assert.equal(res.body.error.code, 'VALIDATION_FAILED', url);
      assert.equal(res.body.error.details.fields[0].path, 'callback_url', url);
    }
    const other = {
      authorization: `Bearer ${
        (
          await request(server)
            .post('/v1/api-keys')
            .set(AUTH)
            .send({ tenant: 'hooks-b', scopes: ['jobs:read', 'jobs:write', 'secrets:write'] })
            .expect(201)
        ).body.key
      }`,
    };
    const mine = (await submit({ action: 'inspect', image, callback_url: receiver.url }).expect(202)).body.id;
    await request(server).get(`/v1/jobs/${mine}/deliveries`).set(other).expect(404);
    await request(server).post(`/v1/jobs/${mine}/deliveries/redeliver`).set(other).expect(404);
    assert.notEqual(await secret(other), await secret());
    const readOnly = {
      authorization: `Bearer ${
        (
          await request(server)
            .post('/v1/api-keys')
            .set(AUTH)
            .send({ tenant: 'hooks-b', scopes: ['jobs:read'] })
            .expect(201)
        ).body.key
      }`,
    };
    await request(server).get('/v1/webhooks/secret').set(readOnly).expect(403);
  });
});
