import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CACHE_DIR, OFFLINE_TRIVY_DB, PROJECT_DIR, TEST_SECRETS_KEY } from './env.js';
import { TOKEN } from './stack.js';
import { tempDir } from './temp-dir.js';

/**
 * Fault-injection helpers: stevedore roles and daemons as detached children (each the
 * leader of its own process group, so a SIGKILL of the group also takes the buildctl
 * and daemons it started), and small HTTP helpers with a per-request time limit.
 */

export const TERMINAL = ['succeeded', 'failed', 'cancelled', 'timed_out'];
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface GroupProcess {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  output(): string;
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves when the leader has exited (code or signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals the whole process group. */
  signal(sig: NodeJS.Signals): void;
  /** SIGKILL to the group, then waits until no member of it runs any more. */
  kill(): Promise<void>;
  /** SIGTERM to the leader, SIGKILL to the group after `graceMs`; always leaves no member running. */
  stop(graceMs?: number): Promise<void>;
}

/** Live (non-zombie) processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(join('/proc', entry, 'stat'), 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // fields: state, ppid, pgrp, ...
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

async function waitGroupGone(pgid: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (groupMembers(pgid).length && Date.now() < deadline) await sleep(50);
  const left = groupMembers(pgid);
  if (left.length) throw new Error(`process group ${pgid} still has members after ${timeoutMs} ms: ${left.join(', ')}`);
}

export function spawnGroup(name: string, command: string, args: string[], env: NodeJS.ProcessEnv, echo = false): GroupProcess {
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = child.pid;
  if (!pid) throw new Error(`${name}: could not spawn ${command}`);
  const chunks: Buffer[] = [];
  const listeners = new Set<() => void>();
  const collect = (chunk: Buffer) => {
    chunks.push(chunk);
    if (echo) process.stderr.write(chunk);
    for (const l of listeners) l();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const output = () => Buffer.concat(chunks).toString('utf8');
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const isRunning = () => child.exitCode === null && child.signalCode === null;
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid, sig);
    } catch {
      // the group is gone
    }
  };
  return {
    name,
    pid,
    child,
    output,
    exited,
    signal: signalGroup,
    waitForOutput(pattern, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (!pattern.test(output())) return;
          done();
          resolve();
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${name}: no output matching ${pattern} within ${timeoutMs} ms:\n${output().slice(-4000)}`));
        }, timeoutMs);
        const onExit = () => {
          done();
          reject(new Error(`${name} exited (${child.exitCode ?? child.signalCode}) before ${pattern}:\n${output().slice(-4000)}`));
        };
        const done = () => {
          clearTimeout(timer);
          listeners.delete(check);
          child.off('exit', onExit);
        };
        listeners.add(check);
        child.once('exit', onExit);
        check();
        if (!isRunning()) onExit();
      });
    },
    async kill() {
      signalGroup('SIGKILL');
      await exited;
      await waitGroupGone(pid);
    },
    async stop(graceMs = 30_000) {
      if (isRunning()) child.kill('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
      // Anything of the group the leader left behind (it should leave nothing).
      if (groupMembers(pid).length) {
        signalGroup('SIGKILL');
        await waitGroupGone(pid);
      }
    },
  };
}

/**
 * Environment of a `stevedore worker|api|serve` child. Its state dir and its TMPDIR are
 * temp dirs of the test's (unless `extra` names them): a child killed mid-build leaves its
 * scratch dirs there, removed with the test's, not in the machine's /tmp.
 */
export function roleEnv(extra: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    STEVEDORE_CACHE_DIR: CACHE_DIR,
    STEVEDORE_STATE_DIR: extra.STEVEDORE_STATE_DIR ?? tempDir('stv-role-state-'),
    TMPDIR: extra.TMPDIR ?? tempDir('stv-role-tmp-'),
    STEVEDORE_SECRETS_KEY: TEST_SECRETS_KEY,
    STEVEDORE_TOKEN: TOKEN,
    STEVEDORE_LOG_LEVEL: 'info',
    STEVEDORE_METRICS_PORT: '0',
    ...extra,
  };
}

/** `stevedore <role>` as a detached process-group leader. */
export function spawnRole(name: string, role: 'serve' | 'api' | 'worker', env: NodeJS.ProcessEnv): GroupProcess {
  return spawnGroup(
    name,
    process.execPath,
    [join(PROJECT_DIR, 'bin', 'stevedore.js'), role],
    { ...OFFLINE_TRIVY_DB, ...env },
    process.env.STEVEDORE_TEST_ECHO === '1',
  );
}

/** A `stevedore worker` child, resolved once its BullMQ workers are ready. */
export async function startWorker(name: string, env: NodeJS.ProcessEnv): Promise<GroupProcess> {
  const worker = spawnRole(name, 'worker', env);
  try {
    await worker.waitForOutput(/workers ready/, 60_000);
  } catch (err) {
    await worker.kill();
    throw err;
  }
  return worker;
}

export interface ApiAnswer {
  status: number;
  body: any;
  ms: number;
}

/** One API call with a time limit: status 0 and body.error = 'timeout'/'network' otherwise. */
export async function api(
  base: string,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
  timeoutMs = 10_000,
  token = TOKEN,
): Promise<ApiAnswer> {
  const started = Date.now();
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON: kept as text
    }
    return { status: res.status, body: parsed, ms: Date.now() - started };
  } catch (err) {
    const name = (err as Error).name;
    return {
      status: 0,
      body: { error: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'network', message: (err as Error).message },
      ms: Date.now() - started,
    };
  }
}

export const jobOf = async (base: string, id: string) => {
  const res = await api(base, 'GET', `/v1/jobs/${id}`);
  if (res.status !== 200) throw new Error(`GET /v1/jobs/${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
};

export const eventsOf = async (base: string, id: string): Promise<any[]> => {
  const res = await api(base, 'GET', `/v1/jobs/${id}/events?follow=false`);
  if (res.status !== 200) throw new Error(`GET /v1/jobs/${id}/events: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.items;
};

/** Polls until `check` returns a value (not undefined) or the time is up (then throws with `describe()`). */
export async function waitUntil<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  describe?: () => Promise<string>,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(`${what}: not within ${timeoutMs} ms${describe ? `; ${await describe().catch((e: Error) => e.message)}` : ''}`);
    await sleep(everyMs);
  }
}

/** A job's record once it is terminal, within `timeoutMs` (throws with its state otherwise). */
export async function waitTerminal(base: string, id: string, timeoutMs: number): Promise<any> {
  return waitUntil(
    `job ${id} terminal`,
    async () => {
      const job = await jobOf(base, id);
      return TERMINAL.includes(job.state) ? job : undefined;
    },
    timeoutMs,
    async () => `still ${(await jobOf(base, id)).state}`,
    250,
  );
}
