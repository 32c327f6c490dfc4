/** A parsed Server-Sent Event. */
export interface SseEvent {
  id?: string;
  event?: string;
  data?: any;
  receivedAt: number;
}

/**
 * Reads an SSE response to its end (or until `until` says stop), parsing frames and
 * counting heartbeat comments.
 */
export async function readSse(
  url: string,
  headers: Record<string, string>,
  until?: (e: SseEvent) => boolean,
  timeoutMs = 30_000,
): Promise<{ status: number; contentType: string | null; events: SseEvent[]; heartbeats: number; error?: any }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const res = await fetch(url, { headers, signal: controller.signal });
  const events: SseEvent[] = [];
  let heartbeats = 0;
  if (!res.ok || !res.body) {
    // A refusal's JSON body ({error: {code, …}}), for a caller that sorts refusals by code.
    const text = await res.text().catch(() => '');
    clearTimeout(timer);
    let error: any = text;
    try {
      error = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, contentType: res.headers.get('content-type'), events, heartbeats, error };
  }
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let sep: number;
      while ((sep = buffer.indexOf('\n\n')) >= 0) {
        const frame = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        if (frame.startsWith(':')) {
          if (frame.includes('heartbeat')) heartbeats++;
          continue;
        }
        const e: SseEvent = { receivedAt: performance.timeOrigin + performance.now() };
        for (const line of frame.split('\n')) {
          const i = line.indexOf(': ');
          const [k, v] = i >= 0 ? [line.slice(0, i), line.slice(i + 2)] : [line, ''];
          if (k === 'id') e.id = v;
          else if (k === 'event') e.event = v;
          else if (k === 'data') e.data = JSON.parse(v);
        }
        events.push(e);
        if (until?.(e)) {
          controller.abort();
          return { status: res.status, contentType: res.headers.get('content-type'), events, heartbeats };
        }
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
  }
  return { status: res.status, contentType: res.headers.get('content-type'), events, heartbeats };
}
