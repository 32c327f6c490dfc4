import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { startSandboxedBuildkitd, type StartedBuildkitd as SandboxedBuildkitd } from '../../src/runtime/buildkitd.js';
import { seedBaseImage } from '../../src/runtime/seed-base-image.js';
import { BASE_PLATFORMS, CACHE_DIR, TEST_REDIS_PASSWORD, TOOLS, testImages } from './env.js';
import { removeDir, tempDir } from './temp-dir.js';

export interface StartedRegistry {
  container: StartedTestContainer;
  /** host:port on loopback, as BuildKit and the service use it. */
  address: string;
}

/**
 * A registry container (testcontainers), seeded with library/debian:bookworm-slim.
 * `accessLog`: the registry logs every request (a test counts pushes in `docker logs`).
 */
export async function startSeededRegistry(options: { accessLog?: boolean } = {}): Promise<StartedRegistry> {
  const container = await new GenericContainer(testImages().registry)
    .withEnvironment(options.accessLog ? { REGISTRY_LOG_ACCESSLOG_DISABLED: 'false' } : {})
    .withExposedPorts(5000)
    .withWaitStrategy(Wait.forHttp('/v2/', 5000).forStatusCode(200))
    .start();
  const address = `127.0.0.1:${container.getMappedPort(5000)}`;
  await seedBaseImage(new RegistryClient(address), CACHE_DIR, () => undefined, { required: true, platforms: BASE_PLATFORMS });
  return { container, address };
}

/**
 * A Redis container that requires TEST_REDIS_PASSWORD (connect with testRedisUrl(port)); a
 * fixed host port lets a test stop it and bring one back at the same address.
 */
export async function startRedis(hostPort?: number): Promise<StartedTestContainer> {
  const ports = hostPort ? [{ container: 6379, host: hostPort }] : [6379];
  return (
    new GenericContainer(testImages().redis)
      .withExposedPorts(...ports)
      // The image's CMD (test/images/redis.Dockerfile) plus the password.
      .withCommand([
        'redis-server',
        '--bind',
        '0.0.0.0',
        '--protected-mode',
        'no',
        '--save',
        '',
        '--appendonly',
        'no',
        '--requirepass',
        TEST_REDIS_PASSWORD,
      ])
      .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
      .start()
  );
}

export type StartedBuildkitd = Pick<SandboxedBuildkitd, 'address' | 'network' | 'stop'>;

/**
 * A real buildkitd (child process) in its network sandbox, whose docker.io mirror is
 * `mirror`; its own fetches may reach the mirror and `allowedHosts` (host:port) on this machine.
 */
export async function startBuildkitd(mirror: string, options: { allowedHosts?: string[] } = {}): Promise<StartedBuildkitd> {
  const dir = tempDir('stv-bk-');
  const started = await startSandboxedBuildkitd({
    dir,
    buildkitd: TOOLS.buildkitd,
    buildctl: TOOLS.buildctl,
    mirror,
    allowedHosts: options.allowedHosts,
  });
  return {
    address: started.address,
    network: started.network,
    async stop() {
      await started.stop();
      // Its data is large (GBs of layers): gone now, not when the test file ends.
      removeDir(dir);
    },
  };
}
