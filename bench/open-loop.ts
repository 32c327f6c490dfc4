// An open-loop load generator: requests leave on a fixed schedule (every 1/rate s),
// whether or not earlier ones have been answered, and each latency is measured from the
// moment its request was due, not from when it was sent. A closed-loop tool (autocannon,
// even with a rate: it sends each second's quota as a burst, and a connection waits for
// its answer before the next request) stops sending while the server stalls, so the
// stall hides from its percentiles (coordinated omission); here it shows in full.
import { Agent, request } from 'node:http';
import { percentile } from './support.js';

export interface OpenLoopResult {
  /** Requests due in the run (all were sent). */
  sent: number;
  /** Non-2xx answers and failed requests. */
  errors: number;
  p50: number;
  p99: number;
  /** Requests per second actually sent (below `rate` only when this process fell behind). */
  achievedRate: number;
}

export async function openLoop(
  url: string,
  options: { rate: number; durationS: number; headers: Record<string, string>; body: string },
): Promise<OpenLoopResult> {
  const target = new URL(url);
  // Enough sockets that a slow answer never holds back a due request.
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const body = Buffer.from(options.body);
  const headers = { ...options.headers, 'content-length': String(body.length) };
  const send = (due: number) =>
    new Promise<{ ms: number; ok: boolean }>((resolve) => {
      const req = request({ agent, host: target.hostname, port: target.port, path: target.pathname, method: 'POST', headers }, (res) => {
        res.resume();
        res.on('end', () => resolve({ ms: performance.now() - due, ok: res.statusCode! >= 200 && res.statusCode! < 300 }));
      });
      req.on('error', () => resolve({ ms: performance.now() - due, ok: false }));
      req.end(body);
    });

  const total = Math.round(options.rate * options.durationS);
  const interval = 1000 / options.rate;
  const answers: Promise<{ ms: number; ok: boolean }>[] = [];
  const start = performance.now();
  while (answers.length < total) {
    // Timers fire about every millisecond at best: send every request already due.
    const now = performance.now();
    while (answers.length < total && start + answers.length * interval <= now) answers.push(send(start + answers.length * interval));
    await new Promise((r) => setTimeout(r, 1));
  }
  const sentIn = (performance.now() - start) / 1000;
  const results = await Promise.all(answers);
  agent.destroy();
  const ms = results.map((r) => r.ms);
  return {
    sent: total,
    errors: results.filter((r) => !r.ok).length,
    p50: percentile(ms, 50),
    p99: percentile(ms, 99),
    achievedRate: total / sentIn,
  };
}
