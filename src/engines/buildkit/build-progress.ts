import { BuildWarnings, type BuildWarning } from './build-warnings.js';

/**
 * Turns buildctl's `--progress=rawjson` stream (one JSON object per line: vertexes,
 * statuses, logs, warnings) into step state changes, log lines tied to their step and
 * BuildKit's own warnings (build-warnings.ts).
 */
export interface StepEvent {
  id: string;
  name: string;
  state: 'started' | 'completed' | 'error';
  cached: boolean;
  duration_ms: number | null;
  error?: string;
}

export interface StepLog {
  step_id: string;
  stream: 'stdout' | 'stderr';
  line: string;
}

interface RawVertex {
  digest: string;
  name?: string;
  started?: string;
  completed?: string;
  cached?: boolean;
  error?: string;
}
interface RawLog {
  vertex: string;
  stream: number;
  data: string;
}

interface StepState {
  name: string;
  state?: StepEvent['state'];
  cached: boolean;
  started?: number;
  duration_ms: number | null;
}

const LOG_TAIL = 50;
/** Vertices BuildKit reports in error without failing the build: cache imports and (ignore-error) cache exports. */
const NON_FATAL_STEP = /^(importing cache manifest from |exporting cache to |preparing build cache for export|sending cache export)/;

export class BuildProgress {
  private readonly steps = new Map<string, StepState>();
  private readonly partial = new Map<string, string>();
  private readonly tails = new Map<string, string[]>();
  private readonly warned = new BuildWarnings();

  /** Parses one line of the stream; malformed lines are ignored (buildctl may print plain text). */
  feed(line: string): { steps: StepEvent[]; logs: StepLog[]; warnings: BuildWarning[] } {
    const out = { steps: [] as StepEvent[], logs: [] as StepLog[], warnings: [] as BuildWarning[] };
    let message: { vertexes?: RawVertex[]; logs?: RawLog[]; warnings?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      return out;
    }
    if (!message || typeof message !== 'object') return out;
    // buildctl's own output is trusted to be well-formed, but a bad line must not throw.
    for (const v of arrayOf(message.vertexes)) {
      if (typeof v?.digest !== 'string') continue;
      const event = this.updateVertex(v);
      if (event) out.steps.push(event);
    }
    for (const l of arrayOf(message.logs))
      if (typeof l?.vertex === 'string' && typeof l.data === 'string') out.logs.push(...this.addLog(l));
    out.warnings = this.warned.add(message.warnings);
    return out;
  }

  /** BuildKit's warnings so far: deduplicated, at most MAX_WARNINGS (with the total when more). */
  warnings(): ReturnType<BuildWarnings['summary']> {
    return this.warned.summary();
  }

  /** Flushes log text that did not end with a newline. */
  flush(): StepLog[] {
    const out: StepLog[] = [];
    for (const [key, text] of this.partial) {
      const [stepId, stream] = key.split('|') as [string, StepLog['stream']];
      if (text) out.push(this.remember({ step_id: stepId, stream, line: text }));
    }
    this.partial.clear();
    return out;
  }

  /** The build's steps in the order they started: user-facing Dockerfile steps only. */
  summary(): { steps: { name: string; cached: boolean; duration_ms: number | null }[]; cache_hits: number } {
    const steps = [...this.steps.values()]
      .filter((s) => s.state && isDockerfileStep(s.name))
      .map((s) => ({ name: s.name, cached: s.cached, duration_ms: s.duration_ms }));
    return { steps, cache_hits: steps.filter((s) => s.cached).length };
  }

  /**
   * The failed step (first one in error state), with its last log lines. A cache import
   * that found nothing (every first build of a repository) is shown as an errored vertex
   * but BuildKit goes on without it, so it is never the step that failed the build.
   */
  failure(): { step_id: string; step: string; error: string | undefined; logs: string[] } | undefined {
    for (const [id, s] of this.steps) {
      if (s.state === 'error' && !NON_FATAL_STEP.test(s.name))
        return { step_id: id, step: s.name, error: this.errors.get(id), logs: this.tails.get(id) ?? [] };
    }
    return undefined;
  }

  private readonly errors = new Map<string, string>();

  private updateVertex(v: RawVertex): StepEvent | undefined {
    let s = this.steps.get(v.digest);
    if (!s) {
      s = { name: v.name ?? v.digest, cached: false, duration_ms: null };
      this.steps.set(v.digest, s);
    }
    if (v.name) s.name = v.name;
    if (v.cached) s.cached = true;
    const started = v.started ? Date.parse(v.started) : undefined;
    const completed = v.completed ? Date.parse(v.completed) : undefined;
    if (started !== undefined && (s.started === undefined || started < s.started)) s.started = started;
    let next: StepEvent['state'] | undefined;
    if (v.error) next = 'error';
    else if (completed !== undefined) next = 'completed';
    else if (started !== undefined) next = 'started';
    // Report transitions only: buildctl repeats vertexes many times.
    if (!next || next === s.state || (s.state === 'completed' && next === 'started') || s.state === 'error') return undefined;
    s.state = next;
    if (completed !== undefined && s.started !== undefined) s.duration_ms = Math.max(0, completed - s.started);
    if (v.error) this.errors.set(v.digest, v.error);
    return {
      id: v.digest,
      name: s.name,
      state: next,
      cached: s.cached,
      duration_ms: next === 'started' ? null : s.duration_ms,
      ...(v.error ? { error: v.error } : {}),
    };
  }

  private addLog(l: RawLog): StepLog[] {
    const stream: StepLog['stream'] = l.stream === 2 ? 'stderr' : 'stdout';
    const key = `${l.vertex}|${stream}`;
    const text = (this.partial.get(key) ?? '') + Buffer.from(l.data, 'base64').toString('utf8');
    const lines = text.split('\n');
    this.partial.set(key, lines.pop() ?? '');
    return lines.map((line) => this.remember({ step_id: l.vertex, stream, line: line.replace(/\r$/, '') }));
  }

  private remember(log: StepLog): StepLog {
    const tail = this.tails.get(log.step_id) ?? [];
    tail.push(log.line);
    if (tail.length > LOG_TAIL) tail.shift();
    this.tails.set(log.step_id, tail);
    return log;
  }
}

const arrayOf = <T>(value: T[] | undefined): (T | null | undefined)[] => (Array.isArray(value) ? value : []);

/** `[stage 2/3] RUN …`, `[2/3] COPY …`: steps of the Dockerfile, not BuildKit's internals. */
export function isDockerfileStep(name: string): boolean {
  return /^\[[^\]]*\d+\/\d+\]\s/.test(name);
}
