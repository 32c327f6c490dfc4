import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CACHE_DIR, OFFLINE_TRIVY_DB, PROJECT_DIR, TEST_REDIS_PASSWORD, TEST_SECRETS_KEY, TOOLS, testRedisUrl } from './env.js';
import { freePort, TOKEN } from './stack.js';
import { tempDir } from './temp-dir.js';

/** A child in its own process group, so a kill reaches its tools (buildctl) too. */
export interface Child {
  process: ChildProcess;
  output: string[];
  exited: Promise<number | null>;
  kill(signal: NodeJS.Signals): void;
}

function start(command: string, args: string[], env: NodeJS.ProcessEnv, stdin?: string): Child {
  const child = spawn(command, args, { env, stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], detached: true });
  if (stdin !== undefined) child.stdin!.end(stdin);
  const output: string[] = [];
  child.stdout!.on('data', (d: Buffer) => output.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    output,
    exited,
    kill(signal) {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        // already gone
      }
    },
  };
}

export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await Promise.resolve(probe()).catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `stevedore worker` as a real process (its scratch dirs in a temp dir of the test's: tests kill it); resolves once /healthz answers. */
export async function startWorker(env: Record<string, string>): Promise<Child> {
  const metricsPort = await freePort();
  const child = start(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), 'worker'], {
    PATH: process.env.PATH,
    STEVEDORE_CACHE_DIR: CACHE_DIR,
    ...OFFLINE_TRIVY_DB,
    STEVEDORE_STATE_DIR: tempDir('stv-worker-'),
    TMPDIR: tempDir('stv-worker-tmp-'),
    STEVEDORE_TOKEN: TOKEN,
    STEVEDORE_SECRETS_KEY: TEST_SECRETS_KEY,
    STEVEDORE_LOG_LEVEL: 'warn',
    STEVEDORE_HTTP_HOST: '127.0.0.1',
    STEVEDORE_METRICS_PORT: String(metricsPort),
    ...env,
  });
  await until(
    'the worker to be up',
    async () => {
      if (child.process.exitCode !== null) throw new Error(`worker exited: ${child.output.join('').slice(-2000)}`);
      return (await fetch(`http://127.0.0.1:${metricsPort}/healthz`)).ok || undefined;
    },
    60_000,
    200,
  ).catch((err: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${child.output.join('').slice(-2000)}`);
  });
  return child;
}

/** A real redis-server with an append-only file and TEST_REDIS_PASSWORD, restartable on the same port and data. */
export class RedisServer {
  private child?: Child;
  readonly dir = tempDir('stv-redis-');
  constructor(readonly port: number) {}
  get url() {
    return testRedisUrl(this.port);
  }
  async start(): Promise<void> {
    // The password through stdin, as a config file ('-'): not on the command line.
    this.child = start(
      TOOLS.redisServer,
      [
        '-',
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
      ],
      { PATH: process.env.PATH },
      `requirepass ${TEST_REDIS_PASSWORD}\n`,
    );
    await until(
      'redis to answer',
      async () => {
        const r = new Redis(this.port, '127.0.0.1', {
          password: TEST_REDIS_PASSWORD,
          lazyConnect: true,
          retryStrategy: () => null,
          maxRetriesPerRequest: 0,
        });
        r.on('error', () => undefined);
        try {
          await r.connect();
          return (await r.ping()) === 'PONG' || undefined;
        } finally {
          r.disconnect();
        }
      },
      20_000,
    );
  }
  async kill(): Promise<void> {
    this.child?.kill('SIGKILL');
    await this.child?.exited;
  }
  /** An orderly stop (SIGTERM: Redis syncs its AOF and exits), SIGKILL if it takes longer than `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.child) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), graceMs);
    await this.child.exited;
    clearTimeout(timer);
  }
}
