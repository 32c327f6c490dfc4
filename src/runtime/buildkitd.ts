import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import { ChildProcessRunner, runProcess } from '../engines/process-runner.js';
import { BuildSandbox, sandboxWorkerToml, type SandboxNetwork } from './build-sandbox.js';
import { Daemon, waitReady } from './daemon.js';

/**
 * buildkitd.toml: OCI worker, RUN steps behind the sandbox's bridge, docker.io pulled
 * through the local mirror (plain HTTP to it), and no gateway frontends: a `# syntax=`
 * image would be a frontend of the tenant's choosing, which could emit cache mounts and
 * steps without our per-tenant namespace (the build also passes `cmdline`, so the
 * built-in Dockerfile frontend ignores such lines instead of failing).
 */
export function buildkitdConfig(root: string, address: string, mirror: string, network?: SandboxNetwork): string {
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
    ...(network ? sandboxWorkerToml(network) : []),
    '',
    '[worker.containerd]',
    '  enabled = false',
    '',
    '[frontend."gateway.v0"]',
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

export interface StartedBuildkitd {
  address: string;
  daemon: Daemon;
  network: SandboxNetwork;
  stop: () => Promise<void>;
}

/**
 * A buildkitd in its network sandbox (build-sandbox.ts): RUN steps behind its own bridge,
 * its own fetches fenced by group id. `allowedHosts` are the host[:port]s its fetches may
 * reach although they are local or private (the mirror is always one).
 */
export async function startSandboxedBuildkitd(options: {
  dir: string;
  buildkitd: string;
  buildctl: string;
  mirror: string;
  allowedHosts?: readonly string[];
  runDir?: string;
}): Promise<StartedBuildkitd> {
  mkdirSync(join(options.dir, 'root'), { recursive: true, mode: 0o700 });
  const address = `unix://${join(options.dir, 'buildkitd.sock')}`;
  const sandbox = await BuildSandbox.install([options.mirror, ...(options.allowedHosts ?? [])]);
  const configFile = join(options.dir, 'buildkitd.toml');
  writeFileSync(configFile, buildkitdConfig(join(options.dir, 'root'), address, options.mirror, sandbox.network));
  const args = ['--config', configFile, '--oci-worker=true', '--containerd-worker=false', '--oci-worker-snapshotter=overlayfs'];
  const daemon = new Daemon('buildkitd', options.buildkitd, args, options.runDir ?? options.dir, sandbox.network.gid);
  daemon.start();
  if (daemon.pid) sandbox.setOwner(daemon.pid);
  const stop = async () => {
    await daemon.stop();
    await removeLeftoverSteps(join(options.dir, 'root'));
    await sandbox.release();
  };
  try {
    await waitReady(daemon, () => new BuildkitClient(new ChildProcessRunner(), options.buildctl, address).workers(2_000), 60_000);
  } catch (err) {
    await stop();
    throw err;
  }
  return { address, daemon, network: sandbox.network, stop };
}

/**
 * The RUN steps a buildkitd left running: stopped mid-build, it waits for the build and is
 * SIGKILLed after its grace, and runc's containers outlive it (reparented to init, still
 * running, their state left in runc's machine-wide /run/runc). Each is killed and deleted;
 * they are told from other daemons' by their bundle, which lies under this daemon's root.
 */
export async function removeLeftoverSteps(root: string): Promise<void> {
  const { stdout } = await runProcess('runc', ['list', '--format', 'json'], { timeoutMs: 10_000 }).catch(() => ({ stdout: '' }));
  let containers: { id: string; bundle: string }[] = [];
  try {
    containers = (JSON.parse(stdout) as typeof containers | null) ?? [];
  } catch {
    return; // no runc here, or nothing it could list
  }
  for (const { id, bundle } of containers)
    if (bundle.startsWith(`${root}/`)) await runProcess('runc', ['delete', '--force', id], { timeoutMs: 10_000 }).catch(() => undefined);
}
