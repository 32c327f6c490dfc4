import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import type { Job } from 'bullmq';
import { Webhook } from 'standardwebhooks';
import type { DeliveryAttempt, DeliveryLog } from '../../src/webhooks/delivery-log.js';
import type { WebhookSecrets } from '../../src/webhooks/signing-secrets.js';
import { TenantEventPublisher } from '../../src/webhooks/tenant-event-publisher.js';
import {
  EVENT_ID_PATTERN,
  eventWebhookId,
  tenantEventBody,
  type TenantEvent,
  type TenantEventStore,
} from '../../src/webhooks/tenant-event-store.js';
import type { TenantEventType } from '../../src/webhooks/tenant-events.js';
import { createDeliveryProcessor, type DeliveryPayload, type WebhookDispatcher } from '../../src/webhooks/webhook-dispatcher.js';
import { endpointBodySchema, type WebhookEndpoint, type WebhookEndpoints } from '../../src/webhooks/webhook-endpoints.js';
import type { JobStore } from '../../src/jobs/job-store.js';

const SECRET = 'whsec_' + Buffer.alloc(32, 3).toString('base64');
const EVENT: TenantEvent = {
  id: 'evt_0b7c2f0e-1d2a-4c3b-9e8f-0123456789ab',
  type: 'image.vulnerabilities.changed',
  timestamp: '2026-12-03T10:00:00.000Z',
  data: { digest: 'sha256:' + 'a'.repeat(64), introduced: ['CVE-2026-1'], resolved: [], severity_changed: [] },
};
const endpoint = (url: string, events: TenantEventType[]): WebhookEndpoint => ({ url, events, created_at: 'x', updated_at: 'x' });

describe('endpointBodySchema', () => {
  it('keeps known event types once each, in a fixed order', () => {
    const parsed = endpointBodySchema.parse({
      url: 'https://hooks.example.com/x',
      events: ['exception.expired', 'image.vulnerabilities.changed', 'exception.expired'],
    });
    assert.deepEqual(parsed.events, ['image.vulnerabilities.changed', 'exception.expired']);
  });
  it('refuses unknown or no event types, other schemes, extra fields', () => {
    for (const body of [
      { url: 'https://hooks.example.com/x', events: ['job.succeeded'] },
      { url: 'https://hooks.example.com/x', events: [] },
      { url: 'https://hooks.example.com/x' },
      { url: 'ftp://hooks.example.com/x', events: ['exception.expired'] },
      { url: 'not a url', events: ['exception.expired'] },
      { url: 'https://hooks.example.com/x', events: ['exception.expired'], secret: 'no' },
    ])
      assert.equal(endpointBodySchema.safeParse(body).success, false, JSON.stringify(body));
  });
});

describe('tenant event bodies and ids', () => {
  it('is the Standard Webhooks {type, timestamp, data} of the stored event, nothing more', () => {
    assert.deepEqual(JSON.parse(tenantEventBody(EVENT)), { type: EVENT.type, timestamp: EVENT.timestamp, data: EVENT.data });
    assert.equal(eventWebhookId(EVENT.id), `msg_${EVENT.id}`);
    assert.ok(EVENT_ID_PATTERN.test(EVENT.id));
    for (const bad of ['evt_x', `${EVENT.id}:x`, '../evt', EVENT.id.toUpperCase()]) assert.ok(!EVENT_ID_PATTERN.test(bad), bad);
  });
});

describe('TenantEventPublisher', () => {
  const setup = (ep: WebhookEndpoint | undefined) => {
    const created: [string, string][] = [];
    const queued: [string, string][] = [];
    const publisher = new TenantEventPublisher(
      { get: async () => ep } as unknown as WebhookEndpoints,
      { create: async (t: string, type: TenantEventType) => (created.push([t, type]), { ...EVENT, type }) } as unknown as TenantEventStore,
      { tenantEvent: async (t: string, id: string) => void queued.push([t, id]) } as unknown as WebhookDispatcher,
    );
    return { publisher, created, queued };
  };
  it('stores and queues an event the endpoint subscribes to', async () => {
    const s = setup(endpoint('https://h.example/x', ['image.vulnerabilities.changed']));
    await s.publisher.publish('t1', 'image.vulnerabilities.changed', EVENT.data);
    assert.deepEqual(s.created, [['t1', 'image.vulnerabilities.changed']]);
    assert.deepEqual(s.queued, [['t1', EVENT.id]]);
  });
  it('does nothing without an endpoint, or for a type it does not take', async () => {
    for (const ep of [undefined, endpoint('https://h.example/x', ['exception.expired'])]) {
      const s = setup(ep);
      await s.publisher.publish('t1', 'image.vulnerabilities.changed', EVENT.data);
      assert.deepEqual([s.created, s.queued], [[], []]);
    }
  });
});

describe('the delivery processor with a tenant event', () => {
  let server: Server;
  let base = '';
  const seen: { headers: IncomingHttpHeaders; body: string; url: string }[] = [];
  before(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ headers: req.headers, body, url: req.url ?? '' });
        res.writeHead(req.url === '/500' ? 500 : 200).end(req.url === '/500' ? 'broken' : 'ok');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  const run = async (ep: WebhookEndpoint | undefined, event: TenantEvent | null = EVENT) => {
    const logged: [string, Omit<DeliveryAttempt, 'attempt'>][] = [];
    const jobLogged: unknown[] = [];
    const processor = createDeliveryProcessor({
      store: { get: async () => undefined } as unknown as JobStore,
      secrets: { signing: async (t: string) => (t === 't1' ? [SECRET] : []) } as unknown as WebhookSecrets,
      log: { record: async (...a: unknown[]) => jobLogged.push(a) } as unknown as DeliveryLog,
      eventLog: { record: async (s: string, e: Omit<DeliveryAttempt, 'attempt'>) => logged.push([s, e]) } as unknown as DeliveryLog,
      events: {
        get: async (t: string, id: string) => (t === 't1' && id === EVENT.id ? (event ?? undefined) : undefined),
      } as unknown as TenantEventStore,
      endpoints: { get: async (t: string) => (t === 't1' ? ep : undefined) } as unknown as WebhookEndpoints,
      settings: { attempts: 1, retryBaseMs: 1, timeoutMs: 2_000, allowedHosts: ['127.0.0.1'] },
    });
    const data: DeliveryPayload = { kind: 'tenant_event', tenant: 't1', eventId: EVENT.id, webhookId: eventWebhookId(EVENT.id) };
    const outcome = await processor({ data } as Job<DeliveryPayload>).then(
      () => 'ok',
      (err: Error) => `${err.name}: ${err.message}`,
    );
    return { outcome, logged, jobLogged };
  };

  it("sends the stored event to the endpoint's URL, signed with the tenant secret, and logs it under the event", async () => {
    const { outcome, logged, jobLogged } = await run(endpoint(`${base}/ok`, ['image.vulnerabilities.changed']));
    assert.equal(outcome, 'ok');
    const hit = seen.at(-1)!;
    assert.equal(hit.url, '/ok');
    const headers = Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(hit.headers[h])]));
    assert.deepEqual(new Webhook(SECRET).verify(hit.body, headers), JSON.parse(tenantEventBody(EVENT)));
    assert.equal(headers['webhook-id'], `msg_${EVENT.id}`);
    assert.equal(logged.length, 1);
    assert.equal(logged[0]![0], `t1:${EVENT.id}`);
    assert.equal(logged[0]![1].status_code, 200);
    assert.equal(logged[0]![1].type, 'image.vulnerabilities.changed');
    assert.equal(jobLogged.length, 0, 'nothing in any job log');
  });

  it('throws for a retry on a 500, after logging the attempt', async () => {
    const { outcome, logged } = await run(endpoint(`${base}/500`, ['image.vulnerabilities.changed']));
    assert.match(outcome, /^Error: receiver answered 500/);
    assert.equal(logged[0]![1].status_code, 500);
    assert.equal(logged[0]![1].response_excerpt, 'broken');
  });

  it('gives up unsent when the endpoint is gone or no longer takes the type, or the event expired; refuses internal URLs', async () => {
    const before = seen.length;
    for (const [ep, event] of [
      [undefined, EVENT],
      [endpoint(`${base}/ok`, ['exception.expired']), EVENT],
      [endpoint(`${base}/ok`, ['image.vulnerabilities.changed']), null],
    ] as const) {
      const { outcome, logged } = await run(ep, event);
      assert.match(outcome, /^UnrecoverableError/);
      assert.equal(logged.length, 0);
    }
    const refused = await run(endpoint('http://10.1.2.3/hook', ['image.vulnerabilities.changed']));
    assert.match(refused.outcome, /^UnrecoverableError: refused/);
    assert.equal(refused.logged[0]![1].status_code, null);
    assert.equal(seen.length, before);
  });
});
