import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { observeTool } from '../metrics/metrics.js';

/** Why a tool run did not succeed; adapters map these to their own error codes. */
export type ProcessFailureKind = 'exit' | 'timeout' | 'aborted' | 'spawn';

export class ProcessError extends Error {
  constructor(
    readonly kind: ProcessFailureKind,
    readonly command: string,
    readonly exitCode: number | null,
    readonly signal: NodeJS.Signals | null,
    /** Last lines of stderr: what the tool said about its failure. */
    readonly stderrTail: string,
    message: string,
  ) {
    super(message);
    this.name = 'ProcessError';
  }
}

export interface RunOptions {
  cwd?: string;
  /** Replaces the environment when given; secrets go here, never into args. */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called for every complete stdout / stderr line as it arrives. */
  onStdoutLine?: (line: string) => void;
  onStderrLine?: (line: string) => void;
  /** Written to stdin, which is then closed. */
  input?: string | Buffer;
  /** Cap on the stdout kept in memory (lines are still streamed). Default 16 MiB. */
  maxStdoutBytes?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** The seam services depend on, so they can be unit-tested with a fake. */
export interface ProcessRunner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
}

const STDERR_KEEP_BYTES = 64 * 1024;
const KILL_GRACE_MS = 3_000;

/** Keeps the last `limit` bytes of a stream: tools print their real error at the end. */
class TailBuffer {
  private chunks: string[] = [];
  private size = 0;
  constructor(private readonly limit: number) {}
  push(text: string): void {
    this.chunks.push(text);
    this.size += text.length;
    while (this.size > this.limit && this.chunks.length > 1) this.size -= this.chunks.shift()!.length;
  }
  toString(): string {
    const all = this.chunks.join('');
    return all.length > this.limit ? all.slice(all.length - this.limit) : all;
  }
}

/**
 * Runs a program with an argument array (never a shell), streams its output line by
 * line and turns every way it can end badly into a typed ProcessError.
 */
export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const started = Date.now();
  const display = [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new ProcessError('aborted', display, null, null, '', `${command} was cancelled before it started`));
      return;
    }
    const child = spawn(command, [...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
      shell: false,
    });
    const maxStdout = options.maxStdoutBytes ?? 16 * 1024 * 1024;
    let stdout = '';
    let stdoutTruncated = false;
    const stderr = new TailBuffer(STDERR_KEEP_BYTES);
    let failure: ProcessFailureKind | undefined;
    let killTimer: NodeJS.Timeout | undefined;

    const terminate = (kind: ProcessFailureKind) => {
      if (failure) return;
      failure = kind;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
      killTimer.unref();
    };
    const timer = options.timeoutMs ? setTimeout(() => terminate('timeout'), options.timeoutMs) : undefined;
    const onAbort = () => terminate('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      if (stdout.length + chunk.length <= maxStdout) stdout += chunk;
      else stdoutTruncated = true;
    });
    child.stderr.on('data', (chunk: string) => stderr.push(chunk));
    if (options.onStdoutLine) createInterface({ input: child.stdout }).on('line', options.onStdoutLine);
    if (options.onStderrLine) createInterface({ input: child.stderr }).on('line', options.onStderrLine);

    child.stdin.on('error', () => undefined); // a tool that exits without reading stdin is not our failure
    if (options.input !== undefined) child.stdin.end(options.input);
    else child.stdin.end();

    const cleanup = () => {
      if (timer) clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (err) => {
      cleanup();
      observeTool(command, 'spawn', (Date.now() - started) / 1000);
      reject(new ProcessError('spawn', display, null, null, '', `could not start ${command}: ${err.message}`));
    });
    child.on('close', (code, signal) => {
      cleanup();
      observeTool(command, failure ?? (code === 0 ? 'ok' : 'exit'), (Date.now() - started) / 1000);
      const tail = stderr.toString().trim().split('\n').slice(-20).join('\n');
      if (failure === 'timeout') {
        reject(new ProcessError('timeout', display, code, signal, tail, `${command} timed out after ${options.timeoutMs} ms`));
      } else if (failure === 'aborted') {
        reject(new ProcessError('aborted', display, code, signal, tail, `${command} was cancelled`));
      } else if (code !== 0) {
        const why = signal ? `was killed by ${signal}` : `exited with code ${code}`;
        reject(new ProcessError('exit', display, code, signal, tail, `${command} ${why}${tail ? `: ${lastLine(tail)}` : ''}`));
      } else {
        if (stdoutTruncated) stderr.push(`\n[stevedore] stdout of ${command} truncated at ${maxStdout} bytes`);
        resolve({ stdout, stderr: stderr.toString(), durationMs: Date.now() - started });
      }
    });
  });
}

/**
 * A tool's last meaningful output line (trimmed), usually its error: blank lines, and
 * lines `skip` matches (buildctl's JSON progress), do not count.
 */
export function lastLine(text: string, skip?: (line: string) => boolean): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !skip?.(l))
      .pop() ?? ''
  );
}

/**
 * The environment a tool runs with: only PATH, HOME and TMPDIR of this process plus
 * `extra` (its credentials, DOCKER_CONFIG), never the server's whole environment.
 */
export function toolEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...extra };
}

/** The real runner, as an injectable class. */
export class ChildProcessRunner implements ProcessRunner {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    return runProcess(command, args, options);
  }
}
