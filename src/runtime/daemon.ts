import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync, rmSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A long-running child (redis-server, buildkitd, registry) that `serve` owns. Its
 * output goes to a log file in the state dir and its pid to a pidfile, so a `serve`
 * that was killed outright can clean up its orphans on the next start.
 */
export class Daemon {
  private child?: ChildProcess;
  private exited?: Promise<void>;

  constructor(
    readonly name: string,
    private readonly command: string,
    private readonly args: string[],
    private readonly runDir: string,
    /** Group id to run as (buildkitd: its sandbox's, which the firewall matches its sockets by). */
    private readonly gid?: number,
  ) {}

  get logFile(): string {
    return join(this.runDir, `${this.name}.log`);
  }
  private get pidFile(): string {
    return join(this.runDir, `${this.name}.pid`);
  }

  start(): void {
    killStale(this.pidFile);
    const fd = openSync(this.logFile, 'a');
    const child = spawn(this.command, this.args, {
      stdio: ['ignore', fd, fd],
      shell: false,
      ...(this.gid === undefined ? {} : { gid: this.gid }),
    });
    closeSync(fd);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('error', () => undefined); // reported through waitReady / the log
    if (child.pid) writeFileSync(this.pidFile, `${child.pid}\n${this.command}\n`);
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGKILL at once (synchronous: for exit handlers). */
  kill(): void {
    if (this.running) this.child!.kill('SIGKILL');
  }

  /** Last lines of the daemon's log, for error messages. */
  logTail(lines = 15): string {
    try {
      return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return this.forgetPid();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
    this.forgetPid();
  }

  private forgetPid(): void {
    rmSync(this.pidFile, { force: true });
  }
}

/**
 * Kills the daemons an earlier `serve` left behind when it was killed outright (no
 * chance to stop its children), so their ports and data dirs are free again.
 */
export async function killStaleDaemons(runDir: string): Promise<void> {
  if (!existsSync(runDir)) return;
  const killed: number[] = [];
  for (const file of readdirSync(runDir)) {
    if (!file.endsWith('.pid')) continue;
    const pid = killStale(join(runDir, file));
    if (pid) killed.push(pid);
  }
  // SIGKILL is asynchronous: wait until they are gone, so their ports are free again.
  const deadline = Date.now() + 10_000;
  while (killed.some(isAlive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

/**
 * Still holding its ports and files: some thread of it has not exited yet. Not just the
 * leader's state: a SIGKILLed multi-threaded process (docker-registry and buildkitd are Go)
 * shows its leader as a zombie while the other threads still tear down, and the shared
 * file table (the listening socket) closes only with the last of them. Checking the leader
 * alone let a restarted `serve` find the registry port still taken under load.
 */
function isAlive(pid: number): boolean {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return false;
  }
  return tasks.some((tid) => {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      return state !== 'Z' && state !== 'X';
    } catch {
      return false;
    }
  });
}

/** Kills the process a pidfile names, if it still runs the program that wrote it. */
function killStale(pidFile: string): number | undefined {
  if (!existsSync(pidFile)) return undefined;
  const [pidText, program] = readFileSync(pidFile, 'utf8').trim().split('\n');
  rmSync(pidFile, { force: true });
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 1 || !program) return undefined;
  try {
    // A recycled pid that now runs something else is left alone.
    // redis-server rewrites its title ("/usr/bin/redis-server 127.0.0.1:6379"): match the program prefix.
    const argv0 = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '';
    if (argv0 !== program && !argv0.startsWith(`${program} `)) return undefined;
    process.kill(pid, 'SIGKILL');
    return pid;
  } catch {
    return undefined; // already gone
  }
}

/** Polls `probe` until it resolves, the daemon dies, or the deadline passes. */
export async function waitReady(daemon: Daemon, probe: () => Promise<unknown>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!daemon.running) throw new Error(`${daemon.name} exited during start-up:\n${daemon.logTail()}`);
    try {
      await probe();
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`${daemon.name} not ready after ${timeoutMs} ms: ${(lastError as Error)?.message ?? 'no answer'}\n${daemon.logTail()}`);
}
