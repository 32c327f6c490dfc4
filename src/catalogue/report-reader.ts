import { readFile, stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { LRUCache } from 'lru-cache';
import { factsWeight, verdictFacts, type VerdictFacts } from './verdict-facts.js';

export interface ReportReaderLimits {
  /** Reports up to this size are parsed on the calling thread (a few ms); larger ones on the parse thread. */
  inlineMaxBytes: number;
  /** Larger reports are not read at all: the platform's verdict says so (a Trivy JSON report of a very large image is ~30 MB). */
  maxBytes: number;
  /** Parsed reports kept in memory, and their total weight (findings + packages). */
  cacheEntries: number;
  cacheWeight: number;
  /** The parse thread's heap: a pathological report kills that thread, not the API. */
  threadHeapMb: number;
  /** The parse thread ends after this long without work. */
  threadIdleMs: number;
}

export const DEFAULT_REPORT_LIMITS: ReportReaderLimits = {
  inlineMaxBytes: 256 * 1024,
  maxBytes: 64 * 1024 * 1024,
  cacheEntries: 256,
  // ~150 bytes per finding or package once slimmed: some 60 MB at most.
  cacheWeight: 400_000,
  threadHeapMb: 1024,
  threadIdleMs: 30_000,
};

interface ParseThread {
  worker: Worker;
  /** Reports sent to it, by message id. */
  pending: Map<number, { resolve: (f: VerdictFacts) => void; reject: (e: Error) => void }>;
  idle?: NodeJS.Timeout;
}

/** Why a report could not be judged: gone (past retention), too large, or not a report. */
export class ReportUnavailableError extends Error {}

/**
 * A scan's Trivy report files, read for their verdict facts. Reports are immutable once
 * their job has finished, so their facts are cached per file (path, size and mtime: a
 * report removed by the artifact retention is noticed at the next stat, and answered as
 * gone). Concurrent first reads of one report share one parse; large reports are parsed
 * on one separate thread, one at a time, which bounds both the event-loop stall and the
 * memory a burst of cold verdicts can take.
 */
export class ReportReader {
  /** Bounded by entries and by weight (findings + packages, roughly their memory); a report heavier than the budget is not kept. */
  private readonly cache: LRUCache<string, VerdictFacts>;
  private readonly inFlight = new Map<string, Promise<VerdictFacts>>();
  private thread?: ParseThread;
  private nextId = 0;
  /** Reports parsed (cache misses), for tests and the bench. */
  parsed = 0;

  constructor(private readonly limits: ReportReaderLimits = DEFAULT_REPORT_LIMITS) {
    this.cache = new LRUCache({
      max: limits.cacheEntries,
      maxSize: limits.cacheWeight,
      sizeCalculation: (facts) => Math.max(1, factsWeight(facts)),
    });
  }

  async read(path: string): Promise<VerdictFacts> {
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      const why = err.code === 'ENOENT' ? 'gone (past the job retention?)' : `unreadable (${err.code ?? err.message})`;
      throw new ReportUnavailableError(why);
    });
    if (!info.isFile()) throw new ReportUnavailableError('not a file');
    if (info.size > this.limits.maxBytes)
      throw new ReportUnavailableError(`${info.size} bytes, over the ${this.limits.maxBytes}-byte limit for a verdict`);
    const key = `${path}\0${info.size}\0${info.mtimeMs}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    let parsing = this.inFlight.get(key);
    if (!parsing) {
      parsing = (info.size <= this.limits.inlineMaxBytes ? this.parseHere(path) : this.parseOnThread(path))
        .then((facts) => {
          this.parsed++;
          this.cache.set(key, facts);
          return facts;
        })
        .finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, parsing);
    }
    return parsing;
  }

  /** Ends the parse thread (the application is shutting down). */
  async close(): Promise<void> {
    const thread = this.thread;
    this.thread = undefined;
    if (thread) {
      clearTimeout(thread.idle);
      await thread.worker.terminate();
    }
  }

  private async parseHere(path: string): Promise<VerdictFacts> {
    try {
      return verdictFacts(JSON.parse(await readFile(path, 'utf8')));
    } catch (err) {
      throw new ReportUnavailableError(`not a readable Trivy report (${(err as Error).message})`);
    }
  }

  private parseOnThread(path: string): Promise<VerdictFacts> {
    const thread = this.startThread();
    clearTimeout(thread.idle);
    const id = this.nextId++;
    return new Promise<VerdictFacts>((resolve, reject) => {
      thread.pending.set(id, { resolve, reject });
      thread.worker.postMessage({ id, path });
    });
  }

  private startThread(): ParseThread {
    if (this.thread) return this.thread;
    const worker = new Worker(new URL('./report-worker.js', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: this.limits.threadHeapMb },
    });
    const thread: ParseThread = { worker, pending: new Map() };
    worker.unref(); // an idle parse thread never keeps the process alive
    worker.on('message', (m: { id: number; facts?: VerdictFacts; error?: string }) => {
      const waiter = thread.pending.get(m.id);
      thread.pending.delete(m.id);
      if (m.facts) waiter?.resolve(m.facts);
      else waiter?.reject(new ReportUnavailableError(`not a readable Trivy report (${m.error ?? 'no answer'})`));
      if (!thread.pending.size && this.thread === thread)
        thread.idle = setTimeout(() => void this.close(), this.limits.threadIdleMs).unref();
    });
    const fail = (why: string) => {
      if (this.thread === thread) this.thread = undefined;
      for (const [id, waiter] of thread.pending) {
        thread.pending.delete(id);
        waiter.reject(new ReportUnavailableError(`could not be parsed (${why})`));
      }
    };
    // Out of heap (ERR_WORKER_OUT_OF_MEMORY) or any other death: the reports in hand fail, the next read starts a new thread.
    worker.on('error', (err: Error) => fail(err.message));
    worker.on('exit', (code) => fail(`parse thread exited with ${code}`));
    this.thread = thread;
    return thread;
  }
}
