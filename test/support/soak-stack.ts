import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { seedBaseImage } from '../../src/runtime/seed-base-image.js';
import { BASE_PLATFORMS, CACHE_DIR, TOOLS } from './env.js';
import { groupMembers, roleEnv, sleep, spawnGroup, spawnRole, startWorker, waitUntil, type GroupProcess } from './fault-helpers.js';
import { RedisServer } from './processes.js';
import { startBuildkitd, type StartedBuildkitd } from './services.js';
import { freePort } from './stack.js';
import { makeTrivyCache } from './trivy-db.js';
import { Receiver } from './webhook-receiver.js';

/** Lock of a running job: short, so the jobs of the SIGKILLed worker are recovered within seconds. */
const LOCK_SECONDS = 5;
const WORKER_NAMES = ['worker-a', 'worker-b'] as const;

/**
 * What the soak runs against, all on this machine and on free ports: its own redis-server
 * (append-only file, fsync always: a restart loses nothing), a registry seeded with the
 * base image, a sandboxed buildkitd using it as the docker.io mirror, a Trivy cache with
 * the test DB, a webhook receiver, and stevedore split as one `api` process and two
 * `worker` processes (so a worker can be SIGKILLed while the API stays up).
 */
export class SoakStack {
  readonly stateDir = mkdtempSync(join(tmpdir(), 'stv-soak-'));
  redis!: RedisServer;
  registry!: string;
  base!: string;
  grpcAddress!: string;
  receiver!: Receiver;
  api?: GroupProcess;
  readonly workers: GroupProcess[] = [];
  private registryProcess?: GroupProcess;
  private registryDir?: string;
  private buildkitd?: StartedBuildkitd;
  private trivyCache?: string;

  async start(): Promise<void> {
    this.redis = new RedisServer(await freePort());
    await this.redis.start();
    await this.startRegistry();
    await seedBaseImage(new RegistryClient(this.registry), CACHE_DIR, () => undefined, { required: true, platforms: BASE_PLATFORMS });
    this.buildkitd = await startBuildkitd(this.registry);
    this.trivyCache = await makeTrivyCache();
    this.receiver = new Receiver(await freePort(), '/hooks/soak');
    await this.receiver.up();
    await this.startApi();
    for (const name of WORKER_NAMES) this.workers.push(await startWorker(name, this.env()));
  }

  /** The environment every role gets: one Redis, one state dir (the shared volume), one config. */
  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    return roleEnv({
      REDIS_URL: this.redis.url,
      BUILDKIT_HOST: this.buildkitd!.address,
      STEVEDORE_REGISTRY_MIRROR: this.registry,
      STEVEDORE_STATE_DIR: this.stateDir,
      STEVEDORE_TRIVY_CACHE_DIR: this.trivyCache,
      STEVEDORE_TRIVY_DB_UPDATE: 'false',
      STEVEDORE_RESCAN_INTERVAL_SECONDS: '0',
      // Builds alone: the api and workers have no signing key, and an SBOM per push only adds CPU.
      STEVEDORE_DEFAULT_PIPELINE: 'none',
      STEVEDORE_WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      // A delivery that failed in the Redis outage is retried within the drain, not after 6 minutes.
      STEVEDORE_WEBHOOK_RETRY_BASE_MS: '1000',
      STEVEDORE_JOB_LOCK_SECONDS: String(LOCK_SECONDS),
      STEVEDORE_SSE_HEARTBEAT_SECONDS: '5',
      ...extra,
    });
  }

  private async startRegistry(): Promise<void> {
    const dir = (this.registryDir = mkdtempSync(join(tmpdir(), 'stv-soak-reg-')));
    this.registry = `127.0.0.1:${await freePort()}`;
    writeFileSync(
      join(dir, 'config.yml'),
      `version: 0.1\nlog: { level: error, accesslog: { disabled: true } }\n` +
        `storage: { filesystem: { rootdirectory: ${dir}/data }, delete: { enabled: true } }\nhttp: { addr: "${this.registry}" }\n`,
    );
    this.registryProcess = spawnGroup('registry', TOOLS.registry, ['serve', join(dir, 'config.yml')], { PATH: process.env.PATH });
    await waitUntil('the registry to answer', async () => ((await fetch(`http://${this.registry}/v2/`)).ok ? true : undefined), 30_000);
  }

  private async startApi(): Promise<void> {
    const [http, grpc] = [await freePort(), await freePort()];
    this.base = `http://127.0.0.1:${http}`;
    this.grpcAddress = `127.0.0.1:${grpc}`;
    this.api = spawnRole(
      'api',
      'api',
      this.env({
        STEVEDORE_HTTP_HOST: '127.0.0.1',
        STEVEDORE_HTTP_PORT: String(http),
        STEVEDORE_GRPC_PORT: String(grpc),
        // One line per request at info: the soak's own memory would grow with the api's log.
        STEVEDORE_LOG_LEVEL: 'warn',
      }),
    );
    await waitUntil(
      'the api to be ready',
      async () => {
        if (this.api!.child.exitCode !== null) throw new Error(`api exited:\n${this.api!.output().slice(-3000)}`);
        return (await fetch(`${this.base}/readyz`)).status === 200 ? true : undefined;
      },
      90_000,
      async () => this.api!.output().slice(-3000),
      300,
    );
  }

  /** SIGKILL of worker `index`'s whole process group (its buildctl runs die with it). */
  async killWorker(index: number): Promise<void> {
    await this.workers[index]!.kill();
  }

  async restartWorker(index: number): Promise<void> {
    this.workers[index] = await startWorker(WORKER_NAMES[index]!, this.env());
  }

  /** Processes of worker `index`'s group besides the worker itself: buildctl and the like, i.e. a tool at work. */
  toolsRunning(index: number): number {
    const pid = this.workers[index]!.pid;
    return groupMembers(pid).filter((p) => p !== pid).length;
  }

  /** Stops redis-server (SIGTERM) and starts it again on the same port and AOF after `downMs`. */
  async restartRedis(downMs: number): Promise<void> {
    await this.redis.stop();
    await sleep(downMs);
    await this.redis.start();
  }

  /** Resident set size of a process, in bytes (/proc/<pid>/status VmRSS). */
  static rss(pid: number): number {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8')
      .split('\n')
      .find((l) => l.startsWith('VmRSS:'));
    return Number(line?.match(/(\d+)/)?.[1] ?? NaN) * 1024;
  }

  /** Redis's used_memory (bytes) and its key count. */
  async redisMemory(): Promise<{ usedBytes: number; keys: number }> {
    const client = new Redis(this.redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const info = await client.info('memory');
      return { usedBytes: Number(info.match(/^used_memory:(\d+)/m)?.[1] ?? NaN), keys: await client.dbsize() };
    } finally {
      client.disconnect();
    }
  }

  async stop(): Promise<void> {
    await this.api?.stop(10_000).catch(() => undefined);
    for (const w of this.workers) await w.stop(10_000).catch(() => undefined);
    await this.receiver?.down().catch(() => undefined);
    await this.buildkitd?.stop().catch(() => undefined);
    await this.registryProcess?.stop(5_000).catch(() => undefined);
    await this.redis?.kill();
    for (const dir of [this.stateDir, this.trivyCache, this.registryDir, this.redis?.dir])
      if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 2 });
  }
}
