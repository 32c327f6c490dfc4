/**
 * Follows buildctl's rawjson progress for one smoke-test step (the vertex whose name holds
 * `marker`): when it starts, whether it ended, its error, and its stdout/stderr bytes up to
 * a cap each (the rest is dropped, the program is not slowed or stopped by it).
 */
interface RawVertex {
  digest?: unknown;
  name?: unknown;
  started?: unknown;
  completed?: unknown;
  error?: unknown;
}
interface RawLog {
  vertex?: unknown;
  stream?: unknown;
  data?: unknown;
}

class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly cap: number) {}

  add(chunk: Buffer): void {
    const room = this.cap - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = chunk.subarray(0, room);
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

export class SmokeLogCapture {
  private step?: string;
  private started = false;
  private completed = false;
  private error?: string;
  private readonly stdout: CappedBuffer;
  private readonly stderr: CappedBuffer;
  /** Logs can arrive in the same message as the vertex that names the step: kept until known. */
  private readonly early: RawLog[] = [];
  onStepStarted?: () => void;

  constructor(
    private readonly marker: string,
    cap: number,
  ) {
    this.stdout = new CappedBuffer(cap);
    this.stderr = new CappedBuffer(cap);
  }

  feed(line: string): void {
    let message: { vertexes?: unknown; logs?: unknown };
    try {
      message = JSON.parse(line) as typeof message;
    } catch {
      return; // buildctl may print plain text
    }
    if (!message || typeof message !== 'object') return;
    for (const v of (Array.isArray(message.vertexes) ? message.vertexes : []) as RawVertex[]) this.vertex(v);
    for (const l of (Array.isArray(message.logs) ? message.logs : []) as RawLog[]) this.log(l);
  }

  /** Whether the step ended (exited or failed) before the build stopped. */
  finished(): boolean {
    return this.completed;
  }

  /** The step's error, or undefined when the step did not fail (or never ran). */
  stepError(): string | undefined {
    return this.error;
  }

  output(): { stdout: string; stderr: string; stdout_truncated: boolean; stderr_truncated: boolean } {
    return {
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      stdout_truncated: this.stdout.truncated,
      stderr_truncated: this.stderr.truncated,
    };
  }

  private vertex(v: RawVertex): void {
    if (!v || typeof v.digest !== 'string') return;
    if (!this.step && typeof v.name === 'string' && v.name.includes(this.marker)) {
      this.step = v.digest;
      for (const l of this.early.splice(0)) this.log(l);
    }
    if (v.digest !== this.step) return;
    if (v.started && !this.started) {
      this.started = true;
      this.onStepStarted?.();
    }
    if (v.completed) this.completed = true;
    if (typeof v.error === 'string' && v.error) this.error = v.error;
  }

  private log(l: RawLog): void {
    if (!l || typeof l.vertex !== 'string' || typeof l.data !== 'string') return;
    if (!this.step) {
      if (this.early.length < 1000) this.early.push(l);
      return;
    }
    if (l.vertex !== this.step) return;
    const bytes = Buffer.from(l.data, 'base64');
    if (l.stream === 2) this.stderr.add(bytes);
    else if (l.stream === 1) this.stdout.add(bytes);
  }
}
