import { createServer, type Server } from 'node:net';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { StartedTestContainer } from 'testcontainers';
import { startApp, stopApp, type Roles } from '../../src/bootstrap.js';
import type { AppConfig } from '../../src/config/config.js';
import { testConfig, testRedisUrl } from './env.js';
import { startBuildkitd, startRedis, startSeededRegistry, type StartedBuildkitd, type StartedRegistry } from './services.js';
import { tempDir } from './temp-dir.js';

export const TOKEN = 'test-admin-token-0123456789';
export const AUTH = { authorization: `Bearer ${TOKEN}` };

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A TCP port that accepts connections and never answers: a registry that hangs. */
export async function blackhole(): Promise<{ address: string; close(): void }> {
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    address: `127.0.0.1:${port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

export interface Stack {
  registry: StartedRegistry;
  redis: StartedTestContainer;
  redisUrl: string;
  buildkitd?: StartedBuildkitd;
  app: NestFastifyApplication;
  base: string;
  grpcAddress: string;
  config: AppConfig;
  /** Another app (e.g. api only) on the same Redis and registry. */
  startApp(roles: Roles, overrides?: Partial<AppConfig>): Promise<{ app: NestFastifyApplication; base: string }>;
  stop(): Promise<void>;
}

/** Real registry (seeded) and Redis in containers, optionally buildkitd, and the app in-process. */
/** `listenHost`: the REST API's address (0.0.0.0 as `serve` listens, for reachability tests). */
export async function startStack(
  options: { roles?: Roles; buildkit?: boolean; overrides?: Partial<AppConfig>; listenHost?: string; registryAccessLog?: boolean } = {},
): Promise<Stack> {
  const registry = await startSeededRegistry({ accessLog: options.registryAccessLog });
  const redis = await startRedis();
  const redisUrl = testRedisUrl(redis.getMappedPort(6379));
  const buildkitd = options.buildkit
    ? await startBuildkitd(registry.address, { allowedHosts: options.overrides?.buildAllowedHosts })
    : undefined;
  const extra: { app: NestFastifyApplication }[] = [];
  // One state dir for the stack's apps: an API's uploads and a worker's artifacts are shared, as on one host.
  const stateDir = options.overrides?.stateDir ?? tempDir('stv-state-');
  const boot = async (roles: Roles, overrides: Partial<AppConfig> = {}) => {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const config = testConfig({
      stateDir,
      http: { host: options.listenHost ?? '127.0.0.1', port: httpPort },
      grpc: { port: grpcPort },
      redisUrl,
      buildkitHost: buildkitd?.address,
      registryMirror: registry.address,
      sseHeartbeatMs: 200,
      ...options.overrides,
      ...overrides,
    });
    const app = await startApp(config, roles);
    return { app, base: `http://127.0.0.1:${httpPort}`, grpcAddress: `127.0.0.1:${grpcPort}`, config };
  };
  const main = await boot(options.roles ?? { api: true, worker: true });
  return {
    registry,
    redis,
    redisUrl,
    buildkitd,
    ...main,
    async startApp(roles, overrides) {
      const started = await boot(roles, overrides);
      extra.push(started);
      return started;
    },
    async stop() {
      for (const e of extra) await stopApp(e.app);
      await stopApp(main.app);
      await buildkitd?.stop();
      await redis.stop();
      await registry.container.stop();
    },
  };
}
