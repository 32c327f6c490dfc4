import { PLAIN, formatSeconds, type Paint } from './terminal.js';

/** A build's `step` event (src/engines/buildkit/build-progress.ts). */
export interface StepData {
  id: string;
  name: string;
  state: 'started' | 'completed' | 'error';
  cached: boolean;
  duration_ms: number | null;
  error?: string;
}

/**
 * Build progress the way `docker buildx build --progress=plain` prints it: each step
 * numbered `#N` in the order first seen, its name once, its log lines as
 * `#N <seconds since the step started> line`, then `#N DONE 1.2s`, `#N CACHED` or
 * `#N ERROR: …`. Steps interleave when BuildKit runs them in parallel; the number says
 * which is which. Pure: lines in, lines out (the caller writes them).
 */
export class BuildView {
  private readonly numbers = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private readonly named = new Set<string>();
  private readonly names = new Map<string, string>();

  constructor(private readonly paint: Paint = PLAIN) {}

  step(step: StepData, at?: number): string[] {
    const n = this.number(step.id);
    if (step.name) this.names.set(step.id, step.name);
    const lines = this.header(step.id, n);
    if (step.state === 'started') {
      if (at !== undefined && !this.startedAt.has(step.id)) this.startedAt.set(step.id, at);
    } else if (step.state === 'completed') {
      lines.push(
        step.cached ? `#${n} ${this.paint.blue('CACHED')}` : `#${n} ${this.paint.green('DONE')} ${formatSeconds(step.duration_ms ?? 0)}`,
      );
    } else {
      lines.push(`#${n} ${this.paint.red(`ERROR: ${step.error ?? 'failed'}`)}`);
    }
    return lines;
  }

  /** A log line of a step (`step_id`), or of the build as a whole. */
  log(stepId: string | undefined, line: string, at?: number): string[] {
    if (!stepId) return [`   ${line}`];
    const n = this.number(stepId);
    const started = this.startedAt.get(stepId);
    if (started === undefined && at !== undefined) this.startedAt.set(stepId, at);
    const offset = started !== undefined && at !== undefined ? ((at - started) / 1000).toFixed(3) : '0.000';
    return [...this.header(stepId, n), `#${n} ${this.paint.dim(offset)} ${line}`];
  }

  /** The `------` block buildx ends a failed build with: the failing step and its last log lines. */
  failure(details: { step?: unknown; logs?: unknown }): string[] {
    const logs = Array.isArray(details.logs) ? details.logs.map(String) : [];
    if (!details.step && !logs.length) return [];
    return ['------', ...(details.step ? [` > ${String(details.step)}:`] : []), ...logs, '------'];
  }

  private number(id: string): number {
    let n = this.numbers.get(id);
    if (n === undefined) {
      n = this.numbers.size + 1;
      this.numbers.set(id, n);
    }
    return n;
  }

  /** The step's name line, printed once, before anything else about it. */
  private header(id: string, n: number): string[] {
    if (this.named.has(id)) return [];
    this.named.add(id);
    return [`#${n} ${this.paint.bold(this.names.get(id) ?? id)}`];
  }
}

/** A build's `warning` event, or an item of `result.build.warnings` (src/engines/buildkit/build-warnings.ts). */
export interface WarningData {
  rule?: string;
  message?: string;
  detail?: string;
  url?: string;
  line?: number;
}

/** `warning: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)`, as buildx words it. */
export function formatWarning(w: WarningData, paint: Paint = PLAIN): string {
  const where = typeof w.line === 'number' ? ` (line ${w.line})` : '';
  return paint.yellow(`warning: ${w.rule ? `${w.rule}: ` : ''}${String(w.message ?? '')}${where}`);
}

/** The one-line list a build's summary ends with: `2 warnings: FromAsCasing (line 1), JSONArgsRecommended (line 3)`. */
export function warningsLine(warnings: unknown, total: unknown, paint: Paint = PLAIN): string[] {
  if (!Array.isArray(warnings) || !warnings.length) return [];
  const count = typeof total === 'number' && total > warnings.length ? total : warnings.length;
  const named = (warnings as WarningData[]).map(
    (w) => `${w.rule ?? String(w.message ?? '')}${typeof w.line === 'number' ? ` (line ${w.line})` : ''}`,
  );
  const more = count > warnings.length ? `, … ${count - warnings.length} more` : '';
  return [paint.yellow(`${count} BuildKit warning${count === 1 ? '' : 's'}: ${named.join(', ')}${more}`)];
}
