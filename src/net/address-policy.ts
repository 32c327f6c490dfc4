import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';

/**
 * Which addresses the server must not reach on a client's behalf: loopback, private,
 * link-local (cloud metadata at 169.254.169.254), CGNAT, multicast, reserved and
 * unspecified ones, in every spelling. One list for every SSRF guard: webhook callbacks
 * (webhooks/callback-guard.ts), registries (engines/registry/registry-guard.ts) and git
 * build sources (admission/build-policy.ts); each adds its own operator allow-list.
 */
const blocked = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  blocked.addSubnet(net, prefix, 'ipv4');
// ::/96 holds ::, ::1 and the deprecated IPv4-compatible form (::7f00:1 is how URL spells
// [::127.0.0.1]); Teredo and local-use NAT64 tunnel to addresses we cannot see.
for (const [net, prefix] of [
  ['::', 96],
  ['fc00::', 7],
  ['fe80::', 10],
  ['fec0::', 10],
  ['ff00::', 8],
  ['2001:db8::', 32],
  ['3fff::', 20],
  ['100::', 64],
  ['2001::', 32],
  ['64:ff9b:1::', 48],
  ['5f00::', 16],
] as const)
  blocked.addSubnet(net, prefix, 'ipv6');

/** The 16 bytes of an IPv6 address (a dotted IPv4 tail and a zone id allowed), or undefined. */
function ipv6Bytes(ip: string): number[] | undefined {
  let text = ip.toLowerCase().split('%')[0]!;
  if (isIP(text) !== 6) return undefined;
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const groups = (s: string) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const [head, rest] = text.split('::') as [string, string | undefined];
  const words =
    rest === undefined
      ? groups(head)
      : [...groups(head), ...new Array<number>(8 - groups(head).length - groups(rest).length).fill(0), ...groups(rest)];
  return words.flatMap((w) => [w >> 8, w & 255]);
}

/**
 * The IPv4 address an IPv6 one stands for: IPv4-mapped (::ffff:0:0/96), IPv4-translated
 * (::ffff:0:0:0/96), NAT64 (64:ff9b::/96) and 6to4 (2002::/16). These reach the IPv4
 * address (through the kernel or a gateway), so that is the one to judge.
 */
function embeddedIpv4(ip: string): string | undefined {
  const b = ipv6Bytes(ip);
  if (!b) return undefined;
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  const v4 = (at: number) => b.slice(at, at + 4).join('.');
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12);
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return v4(12);
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && zero(4, 12)) return v4(12);
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2);
  return undefined;
}

/** True for an address no guard lets through (without an allow-list entry). */
export function isBlockedAddress(ip: string): boolean {
  const address = ip.split('%')[0]!;
  const family = isIP(address);
  if (family === 4) return blocked.check(address, 'ipv4');
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    return v4 ? blocked.check(v4, 'ipv4') : blocked.check(address, 'ipv6');
  }
  return true; // not an address at all
}

/** A host as URL spells it (lower case, IPv6 compressed without brackets, no trailing dot). */
export function normalizeHost(raw: string): string {
  const host = raw
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/\.$/, '');
  try {
    return new URL(`http://${isIP(host) === 6 ? `[${host}]` : host}/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return host;
  }
}

/** Whether an operator allow-list (e.g. STEVEDORE_WEBHOOK_ALLOWED_HOSTS) names this host, however either is spelled. */
export function isAllowedHost(host: string, allowedHosts: readonly string[]): boolean {
  const wanted = normalizeHost(host);
  return allowedHosts.some((allowed) => normalizeHost(allowed) === wanted);
}

/** Every address of a host name (3 s limit). */
export function resolveAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('DNS timeout')), 3_000);
    dnsLookup(host, { all: true }, (err, addresses) => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(addresses);
    });
  });
}
