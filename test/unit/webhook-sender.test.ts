import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { Webhook } from 'standardwebhooks';
import { sendWebhook } from '../../src/webhooks/webhook-sender.js';

const SECRET = 'whsec_' + Buffer.alloc(32, 7).toString('base64');
const BODY = JSON.stringify({ type: 'job.succeeded', timestamp: '2026-01-01T00:00:00.000Z', data: { job: { id: 'j1' } } });
const message = (url: string) => ({ url, id: 'msg_j1', body: BODY, secrets: [SECRET] });
// Long enough for a loaded machine: a local answer takes milliseconds, and the tests that
// time out on purpose set their own short timeout.
const TIMEOUT_MS = 10_000;
const LOOPBACK = { timeoutMs: TIMEOUT_MS, allowedHosts: ['127.0.0.1'] };

/** A real receiver on loopback whose behaviour each test picks by path. */
function receiver(): Promise<{ server: Server; base: string; seen: { headers: IncomingMessage['headers']; body: string }[] }> {
  const seen: { headers: IncomingMessage['headers']; body: string }[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ headers: req.headers, body });
      if (req.url === '/ok') res.writeHead(204).end();
      else if (req.url === '/500') res.writeHead(500).end('database is down');
      else if (req.url === '/redirect') res.writeHead(302, { location: 'http://169.254.169.254/' }).end();
      else if (req.url === '/huge') res.writeHead(200).end('x'.repeat(1024 * 1024));
      else if (req.url === '/slow-body') res.writeHead(200).write('partial'); // status in time, body never ends
      // '/silent': never answers
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, base: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen })),
  );
}

describe('webhook sender (one attempt against a real receiver)', () => {
  let rx: Awaited<ReturnType<typeof receiver>>;
  before(async () => (rx = await receiver()));
  after(() => {
    rx.server.closeAllConnections();
    rx.server.close();
  });

  it('POSTs the body with Standard Webhooks headers; a 2xx is a success', async () => {
    const sentFrom = Math.floor(Date.now() / 1000);
    const result = await sendWebhook(message(`${rx.base}/ok`), LOOPBACK);
    const sentBy = Math.ceil(Date.now() / 1000);
    assert.equal(result.outcome, 'success');
    assert.equal(result.status_code, 204);
    assert.equal(result.error, null);
    const hit = rx.seen.at(-1)!;
    assert.equal(hit.body, BODY);
    assert.equal(hit.headers['content-type'], 'application/json');
    assert.equal(hit.headers['webhook-id'], 'msg_j1');
    const timestamp = Number(hit.headers['webhook-timestamp']);
    assert.ok(timestamp >= sentFrom && timestamp <= sentBy, `webhook-timestamp ${timestamp}: the sending time in seconds`);
    const headers = {
      'webhook-id': 'msg_j1',
      'webhook-timestamp': String(hit.headers['webhook-timestamp']),
      'webhook-signature': String(hit.headers['webhook-signature']),
    };
    assert.deepEqual(new Webhook(SECRET).verify(hit.body, headers), JSON.parse(BODY));
  });

  it('counts a non-2xx (and a redirect, never followed) as a failed attempt, keeping a short excerpt of the answer', async () => {
    const failed = await sendWebhook(message(`${rx.base}/500`), LOOPBACK);
    assert.deepEqual(
      [failed.outcome, failed.status_code, failed.error, failed.response_excerpt],
      ['http_error', 500, 'receiver answered 500', 'database is down'],
    );
    const redirected = await sendWebhook(message(`${rx.base}/redirect`), LOOPBACK);
    assert.deepEqual([redirected.outcome, redirected.status_code], ['http_error', 302]);
  });

  it('caps what it reads of a huge answer', async () => {
    const result = await sendWebhook(message(`${rx.base}/huge`), LOOPBACK);
    assert.equal(result.outcome, 'success');
    assert.equal(result.response_excerpt!.length, 1024);
  });

  it('gives up after the timeout when the receiver says nothing; a status already in decides', async () => {
    const silent = await sendWebhook(message(`${rx.base}/silent`), { ...LOOPBACK, timeoutMs: 300 });
    assert.equal(silent.outcome, 'timeout');
    assert.equal(silent.status_code, null);
    assert.match(silent.error!, /no answer within 300 ms/);
    // Not before its 300 ms, and by that timer rather than a later one (the 10 s default of
    // LOOPBACK, say): the upper bound leaves a loaded machine's late timer ~15× the 300 ms.
    assert.ok(silent.duration_ms >= 290 && silent.duration_ms < 5_000, `${silent.duration_ms} ms`);
    const slow = await sendWebhook(message(`${rx.base}/slow-body`), { ...LOOPBACK, timeoutMs: 300 });
    assert.deepEqual([slow.outcome, slow.status_code, slow.response_excerpt], ['success', 200, 'partial']);
  });

  it('reports a refused connection and a dropped one as network errors', async () => {
    const closed = createTcpServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as { port: number }).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const refused = await sendWebhook(message(`http://127.0.0.1:${port}/`), LOOPBACK);
    assert.equal(refused.outcome, 'network_error');
    assert.match(refused.error!, /ECONNREFUSED/);

    const rude = createTcpServer((socket: Socket) => socket.destroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    const dropped = await sendWebhook(message(`http://127.0.0.1:${(rude.address() as { port: number }).port}/`), LOOPBACK);
    rude.close();
    assert.equal(dropped.outcome, 'network_error');
    assert.match(dropped.error!, /ECONNRESET|socket hang up/);
  });

  it('refuses internal addresses at connect time: literals, and names that resolve to them', async () => {
    const port = new URL(rx.base).port;
    const before = rx.seen.length;
    for (const url of [
      `http://127.0.0.1:${port}/ok`,
      `http://[::ffff:127.0.0.1]:${port}/ok`,
      `http://localhost:${port}/ok`,
      'http://169.254.169.254/latest/meta-data/',
    ]) {
      const result = await sendWebhook(message(url), { timeoutMs: TIMEOUT_MS, allowedHosts: [] });
      assert.equal(result.outcome, 'refused', url);
      assert.match(result.error!, /SSRF guard/, url);
    }
    assert.equal(rx.seen.length, before, 'nothing reached the receiver');
    const allowed = await sendWebhook(message(`http://localhost:${port}/ok`), { timeoutMs: TIMEOUT_MS, allowedHosts: ['localhost'] });
    // localhost may resolve to ::1 first, where nothing listens: either way it was not refused.
    assert.notEqual(allowed.outcome, 'refused');
  });
});
