import type { ApiAnswer } from './fault-helpers.js';

/**
 * The windows in which Redis is down on purpose: from its stop until it answers again,
 * plus a grace for the service's clients to reconnect (ioredis retries every 2 s at most).
 */
export class OutageWindows {
  private readonly windows: { from: number; to: number }[] = [];
  begin(): { end(graceMs: number): void } {
    const window = { from: Date.now(), to: Infinity };
    this.windows.push(window);
    return { end: (graceMs) => void (window.to = Date.now() + graceMs) };
  }
  overlaps(from: number, to: number): boolean {
    return this.windows.some((w) => from <= w.to && to >= w.from);
  }
}

export interface Unexpected {
  /** Milliseconds since the load started. */
  at: number;
  what: string;
  status: number | string;
  code?: string;
  message?: string;
}

export type Verdict = 'ok' | 'outage' | 'unexpected';

/** gRPC codes that are the server's fault (the 5xx of gRPC): UNKNOWN, INTERNAL, UNAVAILABLE, DATA_LOSS. */
const GRPC_SERVER_CODES = new Set([2, 13, 14, 15]);

/**
 * Every answer the load got, sorted: what it asked for; a 503 REDIS_UNAVAILABLE (or a
 * broken event stream) while Redis was down on purpose — the designed answer, counted
 * apart; or unexpected: any other 5xx (a failure) or any other answer (a 4xx to a valid
 * request, no answer within the time limit).
 */
export class Tally {
  requests = 0;
  outage503 = 0;
  streamBreaksInOutage = 0;
  submitted = 0;
  accepted = 0;
  refusedInOutage = 0;
  readonly submitMs: number[] = [];
  readonly fivexx: Unexpected[] = [];
  readonly other: Unexpected[] = [];
  readonly t0 = Date.now();

  constructor(private readonly outages: OutageWindows) {}

  answer(what: string, res: ApiAnswer, startedAt: number, expected: number): Verdict {
    this.requests++;
    if (res.status === expected) return 'ok';
    const code = typeof res.body?.error === 'object' ? res.body.error.code : res.body?.error;
    if (res.status === 503 && code === 'REDIS_UNAVAILABLE' && this.outages.overlaps(startedAt, startedAt + res.ms)) {
      this.outage503++;
      return 'outage';
    }
    const entry = {
      at: startedAt - this.t0,
      what,
      status: res.status,
      code,
      message: String(res.body?.error?.message ?? res.body?.message ?? ''),
    };
    (res.status >= 500 ? this.fivexx : this.other).push(entry);
    return 'unexpected';
  }

  /** A live stream (SSE `event: error`, a gRPC Watch error, a stream cut off) that broke at `brokeAt`. */
  streamBroke(what: string, startedAt: number, brokeAt: number, detail: { grpcCode?: number; message: string }): Verdict {
    if (this.outages.overlaps(startedAt, brokeAt)) {
      this.streamBreaksInOutage++;
      return 'outage';
    }
    const entry = {
      at: brokeAt - this.t0,
      what,
      status: detail.grpcCode === undefined ? 'stream' : `grpc ${detail.grpcCode}`,
      message: detail.message,
    };
    (detail.grpcCode !== undefined && GRPC_SERVER_CODES.has(detail.grpcCode) ? this.fivexx : this.other).push(entry);
    return 'unexpected';
  }
}
