import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { guardedLookup } from './callback-guard.js';
import { isAllowedHost, isBlockedAddress, normalizeHost } from '../net/address-policy.js';

/** Bytes of a receiver's answer kept for the delivery log; the rest is discarded unread. */
const RESPONSE_EXCERPT_BYTES = 1024;
const RESPONSE_READ_LIMIT = 64 * 1024;

export type DeliveryOutcome = 'success' | 'http_error' | 'network_error' | 'timeout' | 'refused';

export interface SendResult {
  outcome: DeliveryOutcome;
  status_code: number | null;
  duration_ms: number;
  error: string | null;
  response_excerpt: string | null;
}

export interface WebhookMessage {
  url: string;
  /** Standard Webhooks `webhook-id`: the same on every attempt of one event. */
  id: string;
  body: string;
  /** Every secret that signs (two during a rotation): one `v1,<sig>` each. */
  secrets: readonly string[];
}

/** The three Standard Webhooks headers for a message sent now. */
export function signatureHeaders(message: Pick<WebhookMessage, 'id' | 'body' | 'secrets'>, now = new Date()): Record<string, string> {
  const signatures = message.secrets.map((secret) => new Webhook(secret).sign(message.id, now, message.body));
  return {
    'webhook-id': message.id,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}

/** One POST: 2xx is success; anything else is a failed attempt with its reason. */
export function sendWebhook(message: WebhookMessage, options: { timeoutMs: number; allowedHosts: readonly string[] }): Promise<SendResult> {
  const started = performance.now();
  const done = (outcome: DeliveryOutcome, status: number | null, error: string | null, excerpt: string | null = null): SendResult => ({
    outcome,
    status_code: status,
    duration_ms: Math.round(performance.now() - started),
    error,
    response_excerpt: excerpt,
  });
  const url = new URL(message.url);
  const host = normalizeHost(url.hostname);
  // A literal address is never looked up, so the connect-time check happens here.
  if (isIP(host) && !isAllowedHost(host, options.allowedHosts) && isBlockedAddress(host))
    return Promise.resolve(done('refused', null, `refused: ${host} is not a public address (SSRF guard)`));
  return new Promise((resolve) => {
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(url, {
      method: 'POST',
      lookup: guardedLookup(options.allowedHosts),
      headers: { 'content-type': 'application/json', 'user-agent': 'stevedore-webhooks', ...signatureHeaders(message) },
    });
    let response: IncomingMessage | undefined;
    // One limit for the whole attempt (DNS, connect, answer). Once the status line is in,
    // the status decides: a slow body is only cut short, not turned into a failure.
    const timer = setTimeout(() => {
      if (response) response.destroy();
      else req.destroy(Object.assign(new Error(`no answer within ${options.timeoutMs} ms`), { code: 'ETIMEDOUT_WEBHOOK' }));
    }, options.timeoutMs);
    req.on('response', (res: IncomingMessage) => {
      response = res;
      const chunks: Buffer[] = [];
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        if (read < RESPONSE_EXCERPT_BYTES) chunks.push(chunk);
        read += chunk.length;
        if (read > RESPONSE_READ_LIMIT) res.destroy(); // an endless answer is not our problem
      });
      const finish = () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        const excerpt = Buffer.concat(chunks).subarray(0, RESPONSE_EXCERPT_BYTES).toString('utf8') || null;
        resolve(
          status >= 200 && status < 300
            ? done('success', status, null, excerpt)
            : done('http_error', status, `receiver answered ${status}`, excerpt),
        );
      };
      res.on('end', finish);
      res.on('close', finish);
      res.on('error', () => undefined);
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (response) return; // the answer's status decides (finish runs on its close)
      clearTimeout(timer);
      if (err.code === 'ECALLBACKREFUSED') resolve(done('refused', null, err.message));
      else if (err.code === 'ETIMEDOUT_WEBHOOK') resolve(done('timeout', null, err.message));
      else resolve(done('network_error', null, `${err.code ?? 'error'}: ${err.message}`));
    });
    req.end(message.body);
  });
}
