import { setTimeout as sleep } from 'node:timers/promises';
import type { JobEventType } from '../../jobs/job-types.js';
import { unreachable, type ApiClient } from './http.js';

export interface ClientEvent {
  id?: string;
  type: JobEventType | 'error';
  /** The event's JSON, with `at` (epoch ms). */
  data: Record<string, unknown> & { at?: number };
}

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'timed_out']);
export const isTerminalEvent = (e: ClientEvent) => e.type === 'state' && TERMINAL.has(String(e.data.state));

/** Splits an SSE byte stream into events (comments and heartbeats dropped). */
export async function* parseSse(chunks: AsyncIterable<Uint8Array>): AsyncGenerator<ClientEvent> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of chunks) {
    buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n');
    let sep: number;
    while ((sep = buffer.indexOf('\n\n')) >= 0) {
      const frame = buffer.slice(0, sep);
      buffer = buffer.slice(sep + 2);
      const event = parseFrame(frame);
      if (event) yield event;
    }
  }
}

export function parseFrame(frame: string): ClientEvent | undefined {
  let id: string | undefined;
  let type = 'message';
  const data: string[] = [];
  for (const line of frame.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') type = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return undefined;
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(data.join('\n')) as Record<string, unknown>;
  } catch {
    parsed = { message: data.join('\n') };
  }
  return { id, type: type as ClientEvent['type'], data: parsed };
}

const RECONNECTS = 5;

/**
 * A job's events from the start until its terminal state. A dropped stream (a proxy's
 * idle timeout, a server restart) resumes after the last event seen (Last-Event-ID),
 * so nothing is shown twice or missed.
 */
export async function* jobEvents(client: ApiClient, jobId: string, signal?: AbortSignal): AsyncGenerator<ClientEvent> {
  let lastId: string | undefined;
  let failures = 0;
  for (;;) {
    let res: Response;
    try {
      res = await client.fetch('GET', `/v1/jobs/${encodeURIComponent(jobId)}/events`, {
        headers: { accept: 'text/event-stream', ...(lastId ? { 'last-event-id': lastId } : {}) },
        signal,
      });
    } catch (err) {
      if (signal?.aborted || ++failures > RECONNECTS) throw err;
      await sleep(500 * failures, undefined, { signal });
      continue;
    }
    if (!res.ok) {
      // 4xx (no such job, bad token) and 5xx end here with the service's own error.
      const text = await res.text().catch(() => '');
      let body: unknown = text;
      try {
        body = JSON.parse(text);
      } catch {
        // shown as text
      }
      throw client.error(res.status, body);
    }
    try {
      for await (const event of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
        if (event.type === 'error') break; // the server's stream failed: resume after lastId
        failures = 0;
        if (event.id) lastId = event.id;
        yield event;
        if (isTerminalEvent(event)) return;
      }
    } catch (err) {
      if (signal?.aborted) throw err;
    }
    if (++failures > RECONNECTS)
      throw unreachable(client.config.url, new Error(`the event stream of job ${jobId} kept ending before the job finished`));
    await sleep(500 * failures, undefined, { signal });
  }
}
