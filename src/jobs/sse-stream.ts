import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { EventStreamHub } from './event-stream-hub.js';
import { followJobEvents } from './job-events.js';
import type { JobStore } from './job-store.js';
import type { JobEvent } from './job-types.js';

/** What a broken live stream tells the client: never Redis's own words (they are the log's). */
export const STREAM_FAILED = { code: 'STREAM_FAILED', message: 'the event stream failed; reconnect with Last-Event-ID to resume' };

/** One SSE frame: `id:`, `event:` (the type) and the event's JSON on `data:`. */
export const sseFrame = (e: JobEvent) => `id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify({ at: e.at, ...e.data })}\n\n`;

/** The parts of a Fastify request and reply the stream uses (the transports pass their own). */
export interface SseExchange {
  request: { id: unknown; raw: Pick<IncomingMessage, 'on'> };
  reply: { hijack(): void; raw: ServerResponse };
}

export interface SseOptions {
  hub: EventStreamHub;
  store: JobStore;
  /** Resume after this event id (Last-Event-ID); from the start without. */
  after?: string;
  heartbeatMs: number;
  /** Extra response headers (the dashboard's page headers). */
  headers?: OutgoingHttpHeaders;
  /** Told when the stream breaks; the client gets STREAM_FAILED either way. */
  onError?: (err: unknown) => void;
  /** Frees the stream's slot (StreamLimits) once the stream has ended, however it ended. */
  release?: () => void;
}

/**
 * A job's events as Server-Sent Events, for the REST API and the dashboard alike: the
 * log from the start (or after `after`), then live until the terminal state event;
 * `: heartbeat` comments keep idle proxies from closing the connection. The reply is
 * taken over from Fastify: errors from here on are frames, not JSON answers.
 */
export async function streamJobEvents({ request, reply }: SseExchange, jobId: string, options: SseOptions): Promise<void> {
  reply.hijack();
  const raw = reply.raw;
  raw.writeHead(200, {
    ...options.headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-request-id': String(request.id),
  });
  raw.write(': stream open\n\n');
  const abort = new AbortController();
  request.raw.on('close', () => abort.abort());
  const heartbeat = setInterval(() => raw.write(': heartbeat\n\n'), options.heartbeatMs);
  try {
    for await (const event of followJobEvents(options.hub, options.store, jobId, options.after, abort.signal)) raw.write(sseFrame(event));
  } catch (err) {
    options.onError?.(err);
    raw.write(`event: error\ndata: ${JSON.stringify(STREAM_FAILED)}\n\n`);
  } finally {
    options.release?.();
    clearInterval(heartbeat);
    raw.end();
  }
}
