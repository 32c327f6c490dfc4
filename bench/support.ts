import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config/config.js';
import { tempDir } from '../test/support/temp-dir.js';

/** A temp dir of the bench's, removed when it exits (network-namespace mounts under it included). */
export { tempDir };

export const PROJECT_DIR = fileURLToPath(new URL('../../', import.meta.url));
export const TOOLS = loadConfig({ PATH: process.env.PATH, STEVEDORE_CACHE_DIR: process.env.STEVEDORE_CACHE_DIR }).tools;
export const CACHE_DIR = process.env.STEVEDORE_CACHE_DIR ?? '/var/cache/stevedore';

/**
 * What the bench started, undone however it ends: `finish()` after the last measurement,
 * an error, Ctrl-C. Last started, first stopped: serve before the daemons it uses, and a
 * sandboxed buildkitd stopped gracefully (its RUN steps' network namespaces unmounted,
 * its firewall chain and slot released). Its temp dirs go after, on exit (tempDir).
 */
const stops: (() => Promise<void>)[] = [];
/** Killed outright on exit if still there (process.exit() without finish()): the last resort. */
const children: { kill(): void }[] = [];
process.on('exit', () => children.forEach((c) => c.kill()));
let finishing: Promise<never> | undefined;

/** Stops what the bench started, then exits with `code`. */
export function finish(code = 0): Promise<never> {
  finishing ??= (async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch((err: Error) => console.error(`cleanup: ${err.message}`));
    process.exit(code);
  })();
  return finishing;
}
process.on('uncaughtException', (err) => {
  console.error(err);
  void finish(1);
});
process.once('SIGINT', () => void finish(130));
process.once('SIGTERM', () => void finish(143));

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
async function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Starts a child and resolves once `ready` says so (polled). */
export async function startChild(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: () => Promise<boolean>,
  name: string,
): Promise<ChildProcess> {
  const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  children.push({ kill: () => child.kill('SIGKILL') });
  stops.push(() => stopChild(child));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited: ${stderr.slice(-2000)}`);
    if (await ready().catch(() => false)) return child;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${name} not ready: ${stderr.slice(-2000)}`);
}

/** A redis-server with a password (stevedore refuses a REDIS_URL without one); resolves to its URL. */
export async function startRedis(): Promise<string> {
  const port = await freePort();
  const { Redis } = await import('ioredis');
  const { randomBytes } = await import('node:crypto');
  const password = randomBytes(18).toString('base64url');
  const conf = join(tempDir('stv-bench-redis-'), 'redis.conf');
  writeFileSync(conf, `requirepass ${password}\n`, { mode: 0o600 });
  await startChild(
    TOOLS.redisServer,
    [conf, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    {},
    async () => {
      const r = new Redis(port, '127.0.0.1', { password, lazyConnect: true, retryStrategy: () => null });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    },
    'redis',
  );
  return `redis://:${password}@127.0.0.1:${port}/0`;
}

export async function startRegistry(): Promise<string> {
  const dir = tempDir('stv-bench-reg-');
  const addr = `127.0.0.1:${await freePort()}`;
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\n` +
      `storage: { filesystem: { rootdirectory: ${dir}/data } }\nhttp: { addr: "${addr}" }\n`,
  );
  await startChild(TOOLS.registry, ['serve', join(dir, 'config.yml')], {}, async () => (await fetch(`http://${addr}/v2/`)).ok, 'registry');
  return addr;
}

export const httpReady = (url: string) => async () => (await fetch(url)).status < 500;

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

export const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');

/**
 * A buildkitd child with its docker.io mirror pointed at `mirror`; resolves to its address.
 * Sandboxed (bridge network, firewall) as `serve` runs it, unless `sandbox: false` (the
 * host-network daemon of before issue 13, kept as the sandbox bench's baseline).
 */
export async function startBuildkitd(mirror: string, options: { sandbox?: boolean } = {}): Promise<string> {
  const dir = tempDir('stv-bench-bk-');
  if (options.sandbox !== false) {
    const { startSandboxedBuildkitd } = await import('../src/runtime/buildkitd.js');
    const started = await startSandboxedBuildkitd({ dir, buildkitd: TOOLS.buildkitd, buildctl: TOOLS.buildctl, mirror });
    children.push(started.daemon);
    stops.push(started.stop);
    return started.address;
  }
  const { buildkitdConfig } = await import('../src/runtime/buildkitd.js');
  const { BuildkitClient } = await import('../src/engines/buildkit/buildkit-client.js');
  const { ChildProcessRunner } = await import('../src/engines/process-runner.js');
  const address = `unix://${join(dir, 'buildkitd.sock')}`;
  writeFileSync(join(dir, 'buildkitd.toml'), buildkitdConfig(join(dir, 'root'), address, mirror));
  const client = new BuildkitClient(new ChildProcessRunner(), TOOLS.buildctl, address);
  await startChild(
    TOOLS.buildkitd,
    ['--config', join(dir, 'buildkitd.toml'), '--oci-worker=true', '--containerd-worker=false', '--oci-worker-snapshotter=overlayfs'],
    {},
    async () => (await client.workers(2000)).length > 0,
    'buildkitd',
  );
  return address;
}

export function median(values: number[]): number {
  return percentile(values, 50);
}

/**
 * `stevedore serve` on free loopback ports, against the bench's own Redis, buildkitd and
 * registry (`env` names them and the token); resolves with its base URL once /readyz
 * answers (`readyPath`: /healthz for a bench without buildkitd). The Trivy DB source is
 * a closed loopback port unless `env` names one: a bench, like a test, sends traffic
 * only to this machine.
 */
export async function startServe(env: Record<string, string>, readyPath = '/readyz'): Promise<string> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  await startChild(
    process.execPath,
    [join(PROJECT_DIR, 'bin', 'stevedore.js'), 'serve'],
    {
      STEVEDORE_LOG_LEVEL: 'warn',
      STEVEDORE_HTTP_PORT: String(port),
      STEVEDORE_HTTP_HOST: '127.0.0.1',
      STEVEDORE_GRPC_PORT: String(await freePort()),
      STEVEDORE_STATE_DIR: tempDir('stv-bench-state-'),
      // A serve stopped mid-build (SIGKILL after its grace) leaves its scratch dirs here, not in /tmp.
      TMPDIR: tempDir('stv-bench-tmp-'),
      STEVEDORE_CACHE_DIR: CACHE_DIR,
      STEVEDORE_TRIVY_DB_REPOSITORY: '127.0.0.1:1/aquasec/trivy-db:2',
      ...env,
    },
    httpReady(`${base}${readyPath}`),
    'stevedore serve',
  );
  return base;
}

/**
 * What a build bench needs: its own Redis, a registry seeded with the base image, a
 * buildkitd using it as the docker.io mirror, and `serve` over them with the default
 * pipeline off (builds alone, no SBOM or signature after each push). `env` adds to serve's.
 */
export async function startBuildStack(token: string, env: Record<string, string> = {}) {
  const redisUrl = await startRedis();
  const registry = await startRegistry();
  const { RegistryClient } = await import('../src/engines/registry/registry-client.js');
  const { seedBaseImage } = await import('../src/runtime/seed-base-image.js');
  await seedBaseImage(new RegistryClient(registry), CACHE_DIR, () => undefined, { required: true });
  const buildkit = await startBuildkitd(registry);
  const base = await startServe({
    STEVEDORE_DEFAULT_PIPELINE: 'none',
    REDIS_URL: redisUrl,
    BUILDKIT_HOST: buildkit,
    STEVEDORE_REGISTRY_MIRROR: registry,
    STEVEDORE_TOKEN: token,
    ...env,
  });
  return { registry, buildkit, base };
}
