import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { AppConfig } from '../config/config.js';
import { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { ChildProcessRunner } from '../engines/process-runner.js';
import { RegistryClient } from '../engines/registry/registry-client.js';
import { isLoopbackRegistry } from '../engines/references.js';
import { Daemon, killStaleDaemons, waitReady } from './daemon.js';
import { seedBaseImage } from './seed-base-image.js';

/** What `serve` ended up using; written to <state dir>/serve.json. */
export interface ServeEndpoints {
  redis_url: string;
  buildkit_host: string;
  registry: string;
  embedded: { redis: boolean; buildkit: boolean; registry: boolean };
}

type Log = (message: string) => void;

/**
 * Starts, for `serve`, whichever of Redis, buildkitd and the registry the environment
 * does not point at, under the state dir, and stops them again. Seeds the base image.
 */
export class EmbeddedStack {
  private readonly daemons: Daemon[] = [];
  private readonly runDir: string;

  constructor(private readonly config: AppConfig, private readonly log: Log) {
    this.runDir = join(config.stateDir, 'run');
  }

  async start(): Promise<ServeEndpoints> {
    mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    await killStaleDaemons(this.runDir);
    try {
      const registry = this.config.registryMirror ?? (await this.startRegistry());
      const insecure = isLoopbackRegistry(registry) || this.config.insecureRegistries.includes(registry);
      await seedBaseImage(new RegistryClient(registry, { insecure }), this.config.cacheDir, this.log, { required: !this.config.registryMirror });
      const [redis_url, buildkit_host] = await Promise.all([
        this.config.redisUrl ?? this.startRedis(),
        this.config.buildkitHost ?? this.startBuildkitd(registry),
      ]);
      const endpoints: ServeEndpoints = {
        redis_url,
        buildkit_host,
        registry,
        embedded: { redis: !this.config.redisUrl, buildkit: !this.config.buildkitHost, registry: !this.config.registryMirror },
      };
      writeFileSync(join(this.config.stateDir, 'serve.json'), JSON.stringify(endpoints, null, 2) + '\n');
      return endpoints;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.stop()));
    this.daemons.length = 0;
  }

  private async startRegistry(): Promise<string> {
    const dir = join(this.config.stateDir, 'registry');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const addr = this.config.registryListen;
    await assertPortFree(addr, 'STEVEDORE_REGISTRY_LISTEN (or point STEVEDORE_REGISTRY_MIRROR at a running registry)');
    const configFile = join(dir, 'config.yml');
    writeFileSync(
      configFile,
      [
        'version: 0.1',
        'log: { level: warn, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} }, delete: { enabled: true } }`,
        `http: { addr: ${JSON.stringify(addr)}, secret: ${JSON.stringify(randomBytes(16).toString('hex'))} }`,
        '',
      ].join('\n'),
    );
    const daemon = this.own(new Daemon('registry', this.config.tools.registry, ['serve', configFile], this.runDir));
    await waitReady(daemon, () => new RegistryClient(addr).ping(), 30_000);
    this.log(`embedded registry on ${addr} (data in ${dir}/data)`);
    return addr;
  }

  private async startRedis(): Promise<string> {
    const dir = join(this.config.stateDir, 'redis');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const port = await pickPort(6379);
    // Append-only file with fsync every second: a killed `serve` loses at most ~1 s.
    const args = ['--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--daemonize', 'no', '--protected-mode', 'yes'];
    const daemon = this.own(new Daemon('redis', this.config.tools.redisServer, args, this.runDir));
    const url = `redis://127.0.0.1:${port}/0`;
    await waitReady(daemon, () => pingRedis(url), 30_000);
    this.log(`embedded redis on ${url} (append-only data in ${dir})`);
    return url;
  }

  private async startBuildkitd(mirror: string): Promise<string> {
    const dir = join(this.config.stateDir, 'buildkit');
    mkdirSync(join(dir, 'root'), { recursive: true, mode: 0o700 });
    const socket = join(dir, 'buildkitd.sock');
    const address = `unix://${socket}`;
    const configFile = join(dir, 'buildkitd.toml');
    writeFileSync(configFile, buildkitdConfig(join(dir, 'root'), address, mirror));
    const args = ['--config', configFile, '--oci-worker=true', '--containerd-worker=false', '--oci-worker-snapshotter=overlayfs'];
    const daemon = this.own(new Daemon('buildkitd', this.config.tools.buildkitd, args, this.runDir));
    const client = new BuildkitClient(new ChildProcessRunner(), this.config.tools.buildctl, address);
    await waitReady(daemon, () => client.workers(2_000), 60_000);
    this.log(`embedded buildkitd on ${address} (docker.io mirror ${mirror})`);
    return address;
  }

  private own(daemon: Daemon): Daemon {
    daemon.start();
    this.daemons.push(daemon);
    return daemon;
  }
}

/** buildkitd.toml: OCI worker, docker.io pulled through the local mirror, plain HTTP to it. */
export function buildkitdConfig(root: string, address: string, mirror: string): string {
  return [
    `root = ${JSON.stringify(root)}`,
    '',
    '[grpc]',
    `  address = [${JSON.stringify(address)}]`,
    '',
    '[worker.oci]',
    '  enabled = true',
    '  snapshotter = "overlayfs"',
    '  gc = true',
    '',
    '[worker.containerd]',
    '  enabled = false',
    '',
    '[registry."docker.io"]',
    `  mirrors = [${JSON.stringify(mirror)}]`,
    '',
    `[registry.${JSON.stringify(mirror)}]`,
    '  http = true',
    '  insecure = true',
    '',
  ].join('\n');
}

async function pingRedis(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.ping();
  } finally {
    client.disconnect();
  }
}

function listenOnce(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(port, host, () => {
      const chosen = (server.address() as { port: number }).port;
      server.close(() => resolve(chosen));
    });
  });
}

/** The preferred port when free, else one the kernel picks. */
async function pickPort(preferred: number): Promise<number> {
  try {
    return await listenOnce(preferred, '127.0.0.1');
  } catch {
    return listenOnce(0, '127.0.0.1');
  }
}

async function assertPortFree(hostPort: string, hint: string): Promise<void> {
  const i = hostPort.lastIndexOf(':');
  try {
    await listenOnce(Number(hostPort.slice(i + 1)), hostPort.slice(0, i).replace(/^\[|\]$/g, ''));
  } catch (err) {
    throw new Error(`cannot listen on ${hostPort} for the embedded registry (${(err as NodeJS.ErrnoException).code}); set ${hint}`);
  }
}

