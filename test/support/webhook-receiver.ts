import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { Webhook } from 'standardwebhooks';

export interface Received {
  /** The request path: one receiver can stand in for several tenants' endpoints. */
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real webhook receiver on loopback (tests allow 127.0.0.1 in STEVEDORE_WEBHOOK_ALLOWED_HOSTS) answering `status`. */
export class Receiver {
  received: Received[] = [];
  status = 200;
  private server?: Server;
  constructor(
    readonly port: number,
    private readonly path = '/hooks/tenant',
  ) {}
  get url() {
    return this.urlFor(this.path);
  }
  urlFor(path: string) {
    return `http://127.0.0.1:${this.port}${path}`;
  }
  async up(): Promise<void> {
    this.server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        this.received.push({ path: req.url ?? '', headers: req.headers, body });
        res.writeHead(this.status, { 'content-type': 'text/plain' }).end(this.status === 200 ? 'thanks' : 'receiver is broken');
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(this.port, '127.0.0.1', resolve));
  }
  async down(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
  withId(webhookId: string): Received[] {
    return this.received.filter((r) => r.headers['webhook-id'] === webhookId);
  }
}

/** Polls `probe` until it answers something truthy. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A delivery checked as a Standard Webhooks receiver would: throws when the signature is not the tenant secret's. */
export const verifyWebhook = (secret: string, hit: Received) =>
  new Webhook(secret).verify(
    hit.body,
    Object.fromEntries(['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [h, String(hit.headers[h])])),
  ) as { type: string; timestamp: string; data: Record<string, unknown> };
