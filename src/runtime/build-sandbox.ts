import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { runProcess } from '../engines/process-runner.js';
import { parseHostPort } from '../oci/references.js';
import {
  BRIDGE_PREFIX,
  daemonChain,
  daemonJump,
  daemonRules,
  parseNameservers,
  sharedJumps,
  sharedRules,
  type Endpoint,
  type HostNetwork,
} from './build-firewall.js';

/** Where daemons claim their sandbox slot (bridge, subnet, group id); one file per slot. */
const SLOT_DIR = '/run/stevedore/build-sandbox';
const MAX_SLOTS = 200;
/** Group ids of buildkitd processes: high, so they name no real group. */
const GID_BASE = 1_950_000_000;

/** One buildkitd's network sandbox: its bridge, the subnet of its RUN steps, its group id. */
export interface SandboxNetwork {
  index: number;
  bridge: string;
  subnet: string;
  gid: number;
}

/** The [worker.oci] lines that put RUN steps behind the sandbox's bridge. */
export function sandboxWorkerToml(net: SandboxNetwork): string[] {
  return [
    '  networkMode = "bridge"',
    '  cniBinaryPath = "/usr/lib/cni"',
    `  bridgeName = ${JSON.stringify(net.bridge)}`,
    `  bridgeSubnet = ${JSON.stringify(net.subnet)}`,
  ];
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Claims the lowest free slot (a slot whose owner died is free again). */
function claimSlot(): number {
  mkdirSync(SLOT_DIR, { recursive: true, mode: 0o700 });
  for (let i = 0; i < MAX_SLOTS; i++) {
    const file = join(SLOT_DIR, String(i));
    if (existsSync(file)) {
      const owner = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) continue;
      rmSync(file, { force: true });
    }
    try {
      const fd = openSync(file, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return i;
    } catch {
      continue; // another process took it between the check and the create
    }
  }
  throw new Error(`no free build sandbox slot (${MAX_SLOTS} in use under ${SLOT_DIR})`);
}

/**
 * CNI's host-local IPAM keeps a file per address it handed out, under the conflist name
 * BuildKit always uses. A daemon killed outright never returns its addresses; a new owner
 * of the slot drops them, or the subnet would run out after enough such kills.
 */
function forgetStaleAddresses(index: number): void {
  const dir = '/var/lib/cni/networks/buildkit';
  if (!existsSync(dir)) return;
  for (const file of readdirSync(dir)) if (file.startsWith(`10.213.${index}.`)) rmSync(join(dir, file), { force: true });
}

/** The host's nameservers and directly attached subnets, read from the machine. */
export async function readHostNetwork(): Promise<HostNetwork> {
  const nameservers = parseNameservers(existsSync('/etc/resolv.conf') ? readFileSync('/etc/resolv.conf', 'utf8') : '');
  const lanSubnets: string[] = [];
  for (const family of ['-4', '-6']) {
    const { stdout } = await runProcess('ip', [family, '-o', 'route', 'show', 'scope', 'link'], { timeoutMs: 5_000 }).catch(() => ({
      stdout: '',
    }));
    for (const line of stdout.split('\n')) {
      const [dest, , dev] = line.trim().split(/\s+/);
      // Our own bridges, Docker's and CNI's are not the LAN; their traffic is fenced elsewhere.
      if (!dest || dest === 'default' || !dest.includes('/') || !dev || /^(stvbk|docker|br-|buildkit|cni|veth)/.test(dev)) continue;
      lanSubnets.push(dest);
    }
  }
  return { nameservers, lanSubnets };
}

/** Allowed `host[:port]` entries as addresses (a name gets every address it resolves to now). */
export async function resolveEndpoints(entries: readonly string[]): Promise<Endpoint[]> {
  const out: Endpoint[] = [];
  for (const entry of entries) {
    const { host, port } = parseHostPort(entry);
    const ips = isIP(host) ? [host] : (await lookup(host, { all: true }).catch(() => [])).map((a) => a.address);
    for (const ip of ips) out.push({ ip, port });
  }
  return out;
}

async function iptables(family: 4 | 6, args: string[], input?: string): Promise<void> {
  const tool = input === undefined ? (family === 4 ? 'iptables' : 'ip6tables') : family === 4 ? 'iptables-restore' : 'ip6tables-restore';
  await runProcess(tool, ['-w', ...args], { timeoutMs: 30_000, input });
}

/** Puts the jump first in its chain, once (moving it up when others were inserted above it). */
async function ensureFirst(family: 4 | 6, chain: string, rule: string[], create = false): Promise<void> {
  if (create) await iptables(family, ['-N', chain]).catch(() => undefined); // exists already
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const listed = (await runProcess(tool, ['-w', '-S', chain], { timeoutMs: 30_000 })).stdout
    .split('\n')
    .filter((l) => l.startsWith(`-A ${chain} `));
  const ours = `-A ${chain} ${rule.join(' ')}`;
  if (listed[0] === ours && !listed.slice(1).includes(ours)) return;
  while (
    await iptables(family, ['-D', chain, ...rule]).then(
      () => true,
      () => false,
    )
  );
  await iptables(family, ['-I', chain, '1', ...rule]);
}

/**
 * A claimed sandbox with its firewall in place. `install` before buildkitd starts (so its
 * first RUN step is already fenced); `release` after it stopped.
 */
export class BuildSandbox {
  private constructor(
    readonly network: SandboxNetwork,
    private readonly host: HostNetwork,
  ) {}

  /** Claims a slot and installs the shared chains and this daemon's own; needs root and iptables. */
  static async install(allowedHosts: readonly string[]): Promise<BuildSandbox> {
    if (process.getuid?.() !== 0) throw new Error('the build sandbox needs root (iptables, network namespaces)');
    const index = claimSlot();
    const network: SandboxNetwork = { index, bridge: `${BRIDGE_PREFIX}${index}`, subnet: `10.213.${index}.0/24`, gid: GID_BASE + index };
    forgetStaleAddresses(index);
    const sandbox = new BuildSandbox(network, await readHostNetwork());
    try {
      await sandbox.apply(await resolveEndpoints(allowedHosts));
    } catch (err) {
      await sandbox.release();
      throw new Error(`cannot install the build sandbox firewall: ${(err as Error).message}`, { cause: err });
    }
    return sandbox;
  }

  private async apply(allowed: Endpoint[]): Promise<void> {
    // Bridged packets between two RUN steps on one bridge go through FORWARD only with this on.
    try {
      writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1');
    } catch {
      /* br_netfilter not loaded: steps on the same bridge can reach each other (docs/build-isolation.md) */
    }
    for (const family of [4, 6] as const) {
      // iptables-restore --noflush replaces each named chain atomically: no moment without rules.
      await iptables(family, ['--noflush'], sharedRules(this.host, family));
      for (const { chain, rule, created } of sharedJumps()) await ensureFirst(family, chain, rule, created);
      await iptables(family, ['--noflush'], daemonRules(this.network.index, this.host, allowed, family));
      const jump = daemonJump(this.network.index, this.network.gid);
      await ensureFirst(family, jump.chain, jump.rule);
    }
  }

  /**
   * Hands the slot to the daemon's own process: a daemon that outlives whoever started it
   * (a killed `serve` or test) keeps its slot, bridge and subnet until it is gone too.
   */
  setOwner(pid: number): void {
    writeFileSync(join(SLOT_DIR, String(this.network.index)), `${pid}\n`);
  }

  /** Removes this daemon's chain and frees its slot; the shared chains stay for the others. */
  async release(): Promise<void> {
    const jump = daemonJump(this.network.index, this.network.gid);
    for (const family of [4, 6] as const) {
      await iptables(family, ['-D', jump.chain, ...jump.rule]).catch(() => undefined);
      await iptables(family, ['-F', daemonChain(this.network.index)]).catch(() => undefined);
      await iptables(family, ['-X', daemonChain(this.network.index)]).catch(() => undefined);
    }
    rmSync(join(SLOT_DIR, String(this.network.index)), { force: true });
  }
}
