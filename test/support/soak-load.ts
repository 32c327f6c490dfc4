import { api, sleep, TERMINAL } from './fault-helpers.js';
import { jobsClient } from './grpc-jobs.js';
import type { Tally } from './soak-tally.js';
import { readSse, type SseEvent } from './sse.js';
import { TOKEN } from './stack.js';

/** Where the load goes. */
export interface LoadTarget {
  base: string;
  grpcAddress: string;
  registry: string;
  callbackUrl: string;
}

export type Watcher = 'sse' | 'grpc' | 'poll';

export interface TrackedJob {
  id: string;
  kind: string;
  watcher: Watcher;
  callback: boolean;
  tag?: string;
  /** The terminal state its watcher saw; undefined while it has seen none. */
  seen?: string;
}

/**
 * One cycle of the mix, by weight: inspects (cheap, registry only), builds (a third of
 * them with a 3 s RUN step, so a worker kill finds one running; half pushed to a tag),
 * scans (Trivy with the test DB) and optimizes (image analysis) of the latest pushed tag.
 */
const MIX = [
  'inspect',
  'build',
  'scan',
  'inspect',
  'build-tag',
  'optimize',
  'inspect',
  'build',
  'scan',
  'inspect',
  'build-tag',
  'optimize',
];
/** Pushed tags are reused, so the registry and the catalogue stay bounded in a long run. */
const TAGS = 6;
const AUTH = { authorization: `Bearer ${TOKEN}` };
const isTerminalState = (e: { event?: string; type?: string; data?: any }) =>
  (e.event ?? e.type) === 'state' && TERMINAL.includes(e.data?.state);

/**
 * A bounded mixed load: about `maxInFlight` unfinished jobs (never twice that), one
 * submission every `paceMs` when below it, each job followed to its end by an SSE stream, a gRPC Watch
 * or polling (in turn), every other one with a webhook to the local receiver; between
 * submissions, job listings and /healthz. Every answer goes to the tally.
 */
export class SoakLoad {
  readonly jobs: TrackedJob[] = [];
  private readonly following = new Set<Promise<void>>();
  private readonly pushed: string[] = [];
  private readonly grpc;
  private readonly run = Date.now().toString(36);
  private n = 0;
  private abandoned = false;

  constructor(
    private readonly target: LoadTarget,
    private readonly tally: Tally,
    private readonly maxInFlight = 6,
    private readonly paceMs = 300,
  ) {
    this.grpc = jobsClient(target.grpcAddress, TOKEN);
  }

  get inFlight(): number {
    return this.following.size;
  }

  /** Submits and reads until `endAt` (epoch ms); the jobs' followers go on afterwards (see drain). */
  async runUntil(endAt: number): Promise<void> {
    for (let tick = 0; Date.now() < endAt; tick++) {
      if (tick % 4 === 0) await this.read(tick);
      // Below the cap, or now and then up to twice it: jobs stop finishing while Redis is down,
      // and submissions must still meet the outage.
      if (this.following.size < this.maxInFlight || (tick % 8 === 0 && this.following.size < 2 * this.maxInFlight)) await this.submitNext();
      await sleep(this.paceMs);
    }
  }

  /** Waits until every accepted job's follower has seen its end, for at most `timeoutMs`; then stops them. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.following.size && Date.now() < deadline) await sleep(250);
    this.abandoned = true;
    this.grpc.close();
  }

  private async read(tick: number): Promise<void> {
    const [path, expected] = tick % 8 === 0 ? ['/healthz', 200] : ['/v1/jobs?limit=20', 200];
    const startedAt = Date.now();
    this.tally.answer(`GET ${path}`, await api(this.target.base, 'GET', path), startedAt, expected);
  }

  private body(kind: string, n: number): Record<string, unknown> {
    const base = `${this.target.registry}/library/debian:bookworm-slim`;
    const latest = this.pushed.at(-1);
    switch (kind) {
      case 'inspect':
        return { action: 'inspect', image: base, platform: 'linux/amd64' };
      case 'scan':
        return latest ? { action: 'scan', image: latest } : { action: 'scan', image: base, platform: 'linux/amd64' };
      case 'optimize':
        return latest ? { action: 'optimize', image: latest } : { action: 'optimize', image: base, platform: 'linux/amd64' };
      default: {
        const slow = n % 3 === 1 ? ' && sleep 3' : '';
        const build = {
          action: 'build',
          dockerfile_inline: `FROM debian:bookworm-slim\nRUN echo soak-${this.run}-${n} > /soak${slow}\n`,
          provenance: false,
        };
        return kind === 'build-tag' ? { ...build, tags: [`${this.target.registry}/soak/app:${Math.floor(n / MIX.length) % TAGS}`] } : build;
      }
    }
  }

  private async submitNext(): Promise<void> {
    const n = this.n++;
    const kind = MIX[n % MIX.length]!;
    const body = this.body(kind, n);
    const callback = n % 2 === 0;
    if (callback) body.callback_url = this.target.callbackUrl;
    this.tally.submitted++;
    const startedAt = Date.now();
    const res = await api(this.target.base, 'POST', '/v1/jobs', body, 10_000);
    const verdict = this.tally.answer('POST /v1/jobs', res, startedAt, 202);
    if (verdict === 'outage') this.tally.refusedInOutage++;
    if (verdict !== 'ok') return;
    this.tally.accepted++;
    this.tally.submitMs.push(res.ms);
    const watcher = (['sse', 'grpc', 'poll'] as const)[n % 3]!;
    const job: TrackedJob = { id: res.body.id, kind, watcher, callback, tag: (body.tags as string[] | undefined)?.[0] };
    this.jobs.push(job);
    const follower = this.follow(job)
      .catch(
        (err: Error) =>
          void this.tally.other.push({ at: Date.now() - this.tally.t0, what: `follow ${job.id}`, status: 'error', message: err.message }),
      )
      .finally(() => this.following.delete(follower));
    this.following.add(follower);
  }

  private async follow(job: TrackedJob): Promise<void> {
    const seen = await (job.watcher === 'sse'
      ? this.followSse(job.id)
      : job.watcher === 'grpc'
        ? this.followGrpc(job.id)
        : this.poll(job.id));
    job.seen = seen;
    if (seen === 'succeeded' && job.tag) this.pushed.push(job.tag);
  }

  /** GET /v1/jobs/{id}/events, resumed with Last-Event-ID after a break, until the terminal state event. */
  private async followSse(id: string): Promise<string | undefined> {
    let last: string | undefined;
    const stop = (e: SseEvent) => e.event === 'error' || isTerminalState(e);
    while (!this.abandoned) {
      const startedAt = Date.now();
      const headers = { ...AUTH, ...(last ? { 'last-event-id': last } : {}) };
      // Reconnects every 20 s at most: a follower stuck on a dead stream is noticed, and resuming is exercised.
      const res = await readSse(`${this.target.base}/v1/jobs/${id}/events`, headers, stop, 20_000).catch((err: Error) => err);
      if (res instanceof Error) {
        this.tally.streamBroke('SSE /v1/jobs/{id}/events', startedAt, Date.now(), { message: res.message });
      } else if (this.tally.answer('GET /v1/jobs/{id}/events', { status: res.status, body: res.error, ms: 0 }, startedAt, 200) === 'ok') {
        for (const e of res.events) {
          if (e.event === 'error')
            this.tally.streamBroke('SSE /v1/jobs/{id}/events', startedAt, Date.now(), { message: JSON.stringify(e.data) });
          else if (e.id) last = e.id;
          if (isTerminalState(e)) return e.data.state as string;
        }
        // Timed out while the job runs (or closed without a word): resume almost at once.
        if (!res.events.some((e) => e.event === 'error')) {
          await sleep(100);
          continue;
        }
      }
      await sleep(1_000);
    }
    return undefined;
  }

  /** gRPC Watch from the start (a retry replays the log), until the stream ends with the terminal event. */
  private async followGrpc(id: string): Promise<string | undefined> {
    while (!this.abandoned) {
      const startedAt = Date.now();
      try {
        const events = await this.grpc.watch(id);
        const end = events.findLast(isTerminalState);
        if (end) return end.data.state as string;
        this.tally.streamBroke('gRPC Watch', startedAt, Date.now(), {
          message: `ended after ${events.length} events without the terminal one`,
        });
      } catch (err) {
        if (this.abandoned) break;
        const { code, message } = err as { code?: number; message: string };
        this.tally.streamBroke('gRPC Watch', startedAt, Date.now(), { grpcCode: code, message });
      }
      await sleep(1_000);
    }
    return undefined;
  }

  private async poll(id: string): Promise<string | undefined> {
    while (!this.abandoned) {
      const startedAt = Date.now();
      const res = await api(this.target.base, 'GET', `/v1/jobs/${id}`);
      if (this.tally.answer('GET /v1/jobs/{id}', res, startedAt, 200) === 'ok' && TERMINAL.includes(res.body.state))
        return res.body.state as string;
      await sleep(1_000);
    }
    return undefined;
  }
}
