import { BuildView, formatWarning, type StepData, type WarningData } from './render-build.js';
import type { ClientEvent } from './sse.js';
import { PLAIN, type Paint } from './terminal.js';

/**
 * A job's live events as progress lines (stderr): state changes and progress messages
 * as `=> …`, a build's steps and logs as buildx prints them, other log lines indented,
 * BuildKit's warnings as `warning: Rule: message (line N)`.
 */
export class EventRenderer {
  private readonly build: BuildView;

  constructor(private readonly paint: Paint = PLAIN) {
    this.build = new BuildView(paint);
  }

  render(event: ClientEvent): string[] {
    const d = event.data;
    const at = typeof d.at === 'number' ? d.at : undefined;
    switch (event.type) {
      case 'state':
        return [this.state(d)];
      case 'progress':
        return [this.paint.cyan(`=> ${String(d.message ?? '')}`)];
      case 'step':
        return d.step ? this.build.step(d.step as StepData, at) : [];
      case 'log':
        return this.build.log(typeof d.step_id === 'string' ? d.step_id : undefined, String(d.line ?? ''), at);
      case 'warning':
        return [formatWarning(d as WarningData, this.paint)];
      default:
        return []; // `result`: the final summary prints it
    }
  }

  private state(d: Record<string, unknown>): string {
    const state = String(d.state);
    const notes: string[] = [];
    if (d.attempt !== undefined && Number(d.attempt) > 1) notes.push(`attempt ${String(d.attempt)}`);
    if (d.retry) notes.push('retrying');
    if (d.requeued || d.recovered) notes.push(String(d.reason ?? 'requeued'));
    const line = `=> ${state}${notes.length ? ` (${notes.join(', ')})` : ''}`;
    return state === 'succeeded'
      ? this.paint.green(line)
      : state === 'failed' || state === 'timed_out' || state === 'cancelled'
        ? this.paint.red(line)
        : this.paint.cyan(line);
  }
}
