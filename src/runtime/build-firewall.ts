import { isIP } from 'node:net';

/**
 * The firewall around builds (docs/build-isolation.md). Pure: it renders iptables-restore
 * input; build-sandbox.ts applies it. Two things are fenced:
 *
 * - RUN steps. Each runs in its own network namespace behind a `stvbk<N>` bridge (BuildKit's
 *   bridge network mode). Traffic from any such bridge to the host itself (INPUT: Redis,
 *   the API, buildkitd, the registry, whatever listens on 0.0.0.0) is rejected, and so is
 *   forwarded traffic to loopback, private, link-local (metadata), CGNAT, multicast and
 *   reserved ranges and to the host's own LAN, except DNS to the host's nameservers.
 *   Everything else (the outside world: apt-get, pip, npm) is forwarded and NATed.
 * - The daemon's own fetches (ADD <url>, git contexts, image pulls and pushes) leave from
 *   the host's network namespace, so they are fenced by owner: buildkitd runs with a group
 *   id of its own, and sockets of that group may reach the host's addresses and the
 *   fenced ranges only at the host:ports the operator allows (the registry mirror,
 *   STEVEDORE_BUILD_ALLOWED_HOSTS).
 *
 * REJECT rather than DROP: a refused probe fails at once instead of hanging a build until
 * its timeout, and every fenced destination answers the same, so nothing can be mapped.
 */
export const BRIDGE_PREFIX = 'stvbk';
const FORWARD_CHAIN = 'STV-BUILD-FWD';
const INPUT_CHAIN = 'STV-BUILD-IN';
/** Per daemon: the chain its group's outgoing connections go through. */
export const daemonChain = (index: number) => `STV-BKD-${index}`;

/** Ranges no build may reach unless allowed: loopback, RFC 1918, CGNAT, link-local, multicast, reserved. */
export const FENCED_V4 = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '224.0.0.0/4',
  '240.0.0.0/4',
];
export const FENCED_V6 = ['::1/128', '::/128', 'fc00::/7', 'fe80::/10', 'ff00::/8'];

const REJECT4 = ['-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited'];
const REJECT6 = ['-j', 'REJECT', '--reject-with', 'adm-prohibited'];

export interface Endpoint {
  /** An IPv4 or IPv6 address (names are resolved before they get here). */
  ip: string;
  /** A TCP port, or every port when absent. */
  port?: number;
}

export interface HostNetwork {
  /** Nameservers from /etc/resolv.conf that RUN steps and the daemon may ask (port 53). */
  nameservers: string[];
  /** Subnets the host is directly attached to (its LAN): neighbours, not the outside world. */
  lanSubnets: string[];
}

const v4 = (ip: string) => isIP(ip.split('/')[0]!) === 4;
const join = (rules: string[][]) => rules.map((r) => r.join(' '));

/** The shared chains for every stvbk bridge, as iptables-restore input (filter table). */
export function sharedRules(host: HostNetwork, family: 4 | 6): string {
  const lines: string[][] = [];
  const fwd = (...rule: string[]) => lines.push(['-A', FORWARD_CHAIN, ...rule]);
  const dns = host.nameservers.filter((ns) => (family === 4 ? v4(ns) : !v4(ns)));
  for (const ns of dns) for (const proto of ['udp', 'tcp']) fwd('-d', ns, '-p', proto, '--dport', '53', '-j', 'RETURN');
  const fenced = family === 4 ? [...FENCED_V4, ...host.lanSubnets.filter(v4)] : [...FENCED_V6, ...host.lanSubnets.filter((s) => !v4(s))];
  for (const net of fenced) fwd('-d', net, ...(family === 4 ? REJECT4 : REJECT6));
  // The host itself: nothing on it answers a RUN step (a host nameserver would need its own rule).
  lines.push(['-A', INPUT_CHAIN, ...(family === 4 ? REJECT4 : REJECT6)]);
  return ['*filter', `:${FORWARD_CHAIN} - [0:0]`, `:${INPUT_CHAIN} - [0:0]`, ...join(lines), 'COMMIT', ''].join('\n');
}

/**
 * The jumps into the shared chains, as argument arrays for `iptables -C` / `-I`, each kept
 * first in its chain. Several, because others insert accepting rules above ours later:
 * the CNI firewall plugin puts its chain at the top of FORWARD (it calls CNI-ADMIN before
 * accepting anything), and the Docker engine puts its chains at the top when it starts,
 * where it accepts traffic DNATed to published ports (a RUN step reached a container's
 * published port that way in the isolation test); Docker always evaluates DOCKER-USER
 * first and keeps its contents. `created`: chains we make when missing.
 */
export function sharedJumps(): { chain: string; rule: string[]; created?: boolean }[] {
  const iface = ['-i', `${BRIDGE_PREFIX}+`];
  return [
    { chain: 'INPUT', rule: [...iface, '-j', INPUT_CHAIN] },
    { chain: 'FORWARD', rule: [...iface, '-j', FORWARD_CHAIN] },
    { chain: 'CNI-ADMIN', rule: [...iface, '-j', FORWARD_CHAIN], created: true },
    { chain: 'DOCKER-USER', rule: [...iface, '-j', FORWARD_CHAIN], created: true },
  ];
}

/** The chain for one daemon's own sockets (its group id), as iptables-restore input. */
export function daemonRules(index: number, host: HostNetwork, allowed: Endpoint[], family: 4 | 6): string {
  const chain = daemonChain(index);
  const lines: string[][] = [];
  const add = (...rule: string[]) => lines.push(['-A', chain, ...rule]);
  const mine = (ip: string) => (family === 4 ? v4(ip) : !v4(ip));
  for (const ns of host.nameservers.filter(mine))
    for (const proto of ['udp', 'tcp']) add('-d', ns, '-p', proto, '--dport', '53', '-j', 'RETURN');
  for (const e of allowed.filter((e) => mine(e.ip))) {
    add('-d', e.ip, ...(e.port ? ['-p', 'tcp', '--dport', String(e.port)] : []), '-j', 'RETURN');
  }
  const reject = family === 4 ? REJECT4 : REJECT6;
  // Every address of this host (loopback included): Redis, the API, neighbours' daemons.
  add('-m', 'addrtype', '--dst-type', 'LOCAL', ...reject);
  const fenced = family === 4 ? [...FENCED_V4, ...host.lanSubnets.filter(v4)] : [...FENCED_V6, ...host.lanSubnets.filter((s) => !v4(s))];
  for (const net of fenced) add('-d', net, ...reject);
  return ['*filter', `:${chain} - [0:0]`, ...join(lines), 'COMMIT', ''].join('\n');
}

/** The jump that sends a daemon's sockets (by group id) through its chain. */
export const daemonJump = (index: number, gid: number) => ({
  chain: 'OUTPUT',
  rule: ['-m', 'owner', '--gid-owner', String(gid), '-j', daemonChain(index)],
});

/** Nameservers of a resolv.conf (loopback ones are dropped: BuildKit drops them for RUN steps too). */
export function parseNameservers(resolvConf: string): string[] {
  return resolvConf
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((ns): ns is string => !!ns && isIP(ns.split('%')[0]!) !== 0 && !ns.startsWith('127.') && ns !== '::1');
}
