import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { redactRedisUrl, type AppConfig } from '../config/config.js';
import { DockerConfigCredentials } from '../engines/registry/docker-config.js';
import { RegistryClient } from '../engines/registry/registry-client.js';
import { isLoopbackRegistry } from '../oci/references.js';
import { Daemon, killStaleDaemons, waitReady } from './daemon.js';
import { dockerConfigWith, ensureStateSecret, htpasswdLine, redisConfig, REGISTRY_USER, writePrivateFile } from './credentials.js';
import { startSandboxedBuildkitd } from './buildkitd.js';
import { seedBaseImage } from './seed-base-image.js';

/** What `serve` ended up using; written to <state dir>/serve.json. */
export interface ServeEndpoints {
  redis_url: string;
  buildkit_host: string;
  registry: string;
  embedded: { redis: boolean; buildkit: boolean; registry: boolean };
  /** The embedded Redis's password file (the URL in serve.json has `***` in its place). */
  redis_password_file?: string;
  /** The Docker config.json every tool reads registry credentials from (embedded registry: made by serve). */
  registry_auth_file?: string;
}

type Log = (message: string, level?: 'warn') => void;

/**
 * Starts, for `serve`, whichever of Redis, buildkitd and the registry the environment
 * does not point at, under the state dir, and stops them again. Seeds the base image.
 */
export class EmbeddedStack {
  private readonly daemons: Daemon[] = [];
  /** Daemons started with more than a Daemon to undo (buildkitd: its sandbox). */
  private readonly stoppers: (() => Promise<void>)[] = [];
  private readonly runDir: string;
  /** The embedded registry's password (absent when STEVEDORE_REGISTRY_MIRROR names another registry). */
  private registryPassword?: string;
  private redisPasswordFile?: string;

  constructor(
    private readonly config: AppConfig,
    private readonly log: Log,
  ) {
    this.runDir = join(config.stateDir, 'run');
  }

  async start(): Promise<ServeEndpoints> {
    mkdirSync(this.runDir, { recursive: true, mode: 0o700 });
    await killStaleDaemons(this.runDir);
    try {
      const registry = this.config.registryMirror ?? (await this.startRegistry());
      const registryAuthFile = this.registryPassword
        ? this.writeDockerConfig(registry, this.registryPassword)
        : this.config.registryAuthFile;
      const insecure = isLoopbackRegistry(registry) || this.config.insecureRegistries.includes(registry);
      const credentials = DockerConfigCredentials.fromFile(registryAuthFile).lookup(registry);
      await seedBaseImage(new RegistryClient(registry, { insecure, credentials }), this.config.cacheDir, this.log, {
        required: !this.config.registryMirror,
        platforms: this.config.basePlatforms,
      });
      const [redis_url, buildkit_host] = await Promise.all([
        this.config.redisUrl ?? this.startRedis(),
        this.config.buildkitHost ?? this.startBuildkitd(registry),
      ]);
      const endpoints: ServeEndpoints = {
        redis_url,
        buildkit_host,
        registry,
        embedded: { redis: !this.config.redisUrl, buildkit: !this.config.buildkitHost, registry: !this.config.registryMirror },
        ...(this.redisPasswordFile ? { redis_password_file: this.redisPasswordFile } : {}),
        ...(registryAuthFile ? { registry_auth_file: registryAuthFile } : {}),
      };
      // Never a password in serve.json: the URL's is `***` (the file names where it is).
      writeFileSync(
        join(this.config.stateDir, 'serve.json'),
        JSON.stringify({ ...endpoints, redis_url: redactRedisUrl(redis_url) }, null, 2) + '\n',
      );
      return endpoints;
    } catch (err) {
      await this.stop();
      throw err;
    }
  }

  async stop(): Promise<void> {
    await Promise.all([...this.daemons.map((d) => d.stop()), ...this.stoppers.map((stop) => stop())]);
    this.daemons.length = 0;
    this.stoppers.length = 0;
  }

  private async startRegistry(): Promise<string> {
    const dir = join(this.config.stateDir, 'registry');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const addr = this.config.registryListen;
    await assertPortFree(addr, 'STEVEDORE_REGISTRY_LISTEN (or point STEVEDORE_REGISTRY_MIRROR at a running registry)');
    // Every request needs the user `stevedore` and the generated password (HTTP basic
    // auth against a bcrypt htpasswd file; Docker's registry applies it to reads too).
    // Only this server holds the password: <state dir>/registry-password, 0600.
    const password = ensureStateSecret(this.config.stateDir, 'registry-password');
    const htpasswd = join(dir, 'htpasswd');
    writePrivateFile(htpasswd, htpasswdLine(REGISTRY_USER, password.value));
    const configFile = join(dir, 'config.yml');
    writePrivateFile(
      configFile,
      [
        'version: 0.1',
        'log: { level: warn, accesslog: { disabled: true } }',
        `storage: { filesystem: { rootdirectory: ${JSON.stringify(join(dir, 'data'))} }, delete: { enabled: true } }`,
        `http: { addr: ${JSON.stringify(addr)}, secret: ${JSON.stringify(randomBytes(16).toString('hex'))} }`,
        `auth: { htpasswd: { realm: stevedore, path: ${JSON.stringify(htpasswd)} } }`,
        '',
      ].join('\n'),
    );
    const daemon = this.own(new Daemon('registry', this.config.tools.registry, ['serve', configFile], this.runDir));
    await waitReady(daemon, () => new RegistryClient(addr).ping(), 30_000); // a 401 is an answer
    this.registryPassword = password.value;
    this.log(`embedded registry on ${addr} (data in ${dir}/data; user ${REGISTRY_USER}, password in ${password.file})`);
    return addr;
  }

  /**
   * <state dir>/docker/config.json (0600): the operator's STEVEDORE_REGISTRY_AUTH_FILE,
   * if any, plus the embedded registry's credentials. `serve` points
   * STEVEDORE_REGISTRY_AUTH_FILE at it, so the registry client, buildctl (which hands the
   * credentials to buildkitd through its session), Trivy and cosign all use them.
   */
  private writeDockerConfig(registry: string, password: string): string {
    const file = join(this.config.stateDir, 'docker', 'config.json');
    const base = this.config.registryAuthFile ? readFileSync(this.config.registryAuthFile, 'utf8') : undefined;
    writePrivateFile(file, dockerConfigWith(registry, { username: REGISTRY_USER, password }, base));
    return file;
  }

  private async startRedis(): Promise<string> {
    const dir = join(this.config.stateDir, 'redis');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const port = await pickPort(6379);
    // The password, generated once into <state dir>/redis-password, reaches redis-server
    // in a 0600 config file: never on its command line, where `ps` would show it.
    const password = ensureStateSecret(this.config.stateDir, 'redis-password');
    const configFile = join(dir, 'redis.conf');
    writePrivateFile(configFile, redisConfig(password.value));
    // Append-only file with fsync every second: a killed `serve` loses at most ~1 s.
    const args = [
      configFile,
      '--bind',
      '127.0.0.1',
      '--port',
      String(port),
      '--dir',
      dir,
      '--appendonly',
      'yes',
      '--appendfsync',
      'everysec',
      '--save',
      '',
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ];
    const daemon = this.own(new Daemon('redis', this.config.tools.redisServer, args, this.runDir));
    const url = `redis://:${encodeURIComponent(password.value)}@127.0.0.1:${port}/0`;
    await waitReady(daemon, () => pingRedis(url), 30_000);
    this.redisPasswordFile = password.file;
    this.log(`embedded redis on ${redactRedisUrl(url)} (password in ${password.file}; append-only data in ${dir})`);
    return url;
  }

  private async startBuildkitd(mirror: string): Promise<string> {
    const dir = join(this.config.stateDir, 'buildkit');
    const started = await startSandboxedBuildkitd({
      dir,
      buildkitd: this.config.tools.buildkitd,
      buildctl: this.config.tools.buildctl,
      mirror,
      allowedHosts: [...this.config.buildAllowedHosts, ...this.config.insecureRegistries],
      runDir: this.runDir,
    });
    this.stoppers.push(started.stop);
    this.log(
      `embedded buildkitd on ${started.address} (docker.io mirror ${mirror}; RUN steps ` +
        `on ${started.network.bridge} ${started.network.subnet}, fenced from the host and private networks)`,
    );
    return started.address;
  }

  private own(daemon: Daemon): Daemon {
    daemon.start();
    this.daemons.push(daemon);
    return daemon;
  }
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
  // A few seconds of patience: a registry an earlier `serve` left behind was just killed,
  // and a loaded machine may take a moment to close its socket.
  const deadline = Date.now() + 5_000;
  for (;;) {
    try {
      await listenOnce(Number(hostPort.slice(i + 1)), hostPort.slice(0, i).replace(/^\[|\]$/g, ''));
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' || Date.now() > deadline)
        throw new Error(`cannot listen on ${hostPort} for the embedded registry (${code}); set ${hint}`, { cause: err });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
