import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GenericContainer, Wait, type StartedTestContainer } from 'testcontainers';
import { BuildkitClient } from '../../src/engines/buildkit/buildkit-client.js';
import { ChildProcessRunner } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { Daemon, waitReady } from '../../src/runtime/daemon.js';
import { buildkitdConfig } from '../../src/runtime/embedded-stack.js';
import { seedBaseImage } from '../../src/runtime/seed-base-image.js';
import { CACHE_DIR, TOOLS, testImages } from './env.js';
import { writeFileSync } from 'node:fs';

export interface StartedRegistry {
  container: StartedTestContainer;
  /** host:port on loopback, as BuildKit and the service use it. */
  address: string;
}

/** A registry container (testcontainers), seeded with library/debian:bookworm-slim. */
export async function startSeededRegistry(): Promise<StartedRegistry> {
  const container = await new GenericContainer(testImages().registry)
    .withExposedPorts(5000)
    .withWaitStrategy(Wait.forHttp('/v2/', 5000).forStatusCode(200))
    .start();
  const address = `127.0.0.1:${container.getMappedPort(5000)}`;
  await seedBaseImage(new RegistryClient(address), CACHE_DIR, () => undefined, { required: true });
  return { container, address };
}

/** A Redis container; a fixed host port lets a test stop it and bring one back at the same address. */
export async function startRedis(hostPort?: number): Promise<StartedTestContainer> {
  const ports = hostPort ? [{ container: 6379, host: hostPort }] : [6379];
  return new GenericContainer(testImages().redis)
    .withExposedPorts(...ports)
    .withWaitStrategy(Wait.forLogMessage(/Ready to accept connections/))
    .start();
}

export interface StartedBuildkitd {
  address: string;
  stop(): Promise<void>;
}

/** A real buildkitd (child process) whose docker.io mirror is `mirror`. */
export async function startBuildkitd(mirror: string): Promise<StartedBuildkitd> {
  const dir = mkdtempSync(join(tmpdir(), 'stv-bk-'));
  const address = `unix://${join(dir, 'buildkitd.sock')}`;
  const configFile = join(dir, 'buildkitd.toml');
  writeFileSync(configFile, buildkitdConfig(join(dir, 'root'), address, mirror));
  const daemon = new Daemon('buildkitd', TOOLS.buildkitd, ['--config', configFile, '--oci-worker=true', '--containerd-worker=false', '--oci-worker-snapshotter=overlayfs'], dir);
  daemon.start();
  const client = new BuildkitClient(new ChildProcessRunner(), TOOLS.buildctl, address);
  await waitReady(daemon, () => client.workers(2_000), 60_000);
  return {
    address,
    async stop() {
      await daemon.stop();
      try { rmSync(dir, { recursive: true, force: true }); } catch { /* a busy mount is left for the OS tmp cleaner */ }
    },
  };
}
