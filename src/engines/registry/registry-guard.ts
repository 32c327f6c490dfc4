import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import type { AppConfig } from '../../config/config.js';
import { isBlockedAddress, normalizeHost, resolveAll } from '../../net/address-policy.js';
import { DOCKER_HUB, parseHostPort } from '../../oci/references.js';

/**
 * Which registries the server may talk to on behalf of a tenant (issue 14: the registry
 * client must not be a port scanner). A registry may be any public address; a loopback,
 * private, link-local, CGNAT, metadata or reserved one (net/address-policy.ts) only
 * when the operator configured it: the docker.io mirror (or the embedded registry),
 * STEVEDORE_INSECURE_REGISTRIES and STEVEDORE_REGISTRY_ALLOWED_HOSTS. Judged on the
 * addresses a name resolves to, at submission and again at connect time (the lookup
 * below), so DNS that changes in between gains nothing.
 */
export class RegistryGuard {
  private readonly allowed: { host: string; port?: number }[];

  /** `entries` stay readable so a child process can rebuild the same guard (analysis-runner.ts). */
  constructor(readonly entries: readonly string[]) {
    this.allowed = entries.map(parseHostPort).map((e) => ({ host: normalizeHost(e.host), port: e.port }));
  }

  /** The allow-list a server's configuration implies. */
  static fromConfig(
    config: Pick<AppConfig, 'registryMirror' | 'registryListen' | 'insecureRegistries' | 'registryAllowedHosts'>,
  ): RegistryGuard {
    // Without a mirror, serve runs its embedded registry on registryListen and uses it as the mirror.
    return new RegistryGuard([
      config.registryMirror ?? config.registryListen,
      ...config.insecureRegistries,
      ...config.registryAllowedHosts,
    ]);
  }

  /**
   * Whether the operator configured this host (and port). An entry without a port allows
   * every port of its host; a reference without a port means the scheme's default.
   */
  permits(host: string, port: number | undefined): boolean {
    const wanted = normalizeHost(host);
    return this.allowed.some(
      (e) => e.host === wanted && (e.port === undefined || (port === undefined ? e.port === 443 || e.port === 80 : e.port === port)),
    );
  }

  /**
   * Why a registry (`host[:port]` as a reference names it) may not be used, or undefined.
   * A name that does not resolve is left to the connect-time check (the job then fails as
   * unavailable): refusing it here would make submission depend on DNS hiccups.
   */
  async problem(registry: string): Promise<string | undefined> {
    if (registry === DOCKER_HUB) return undefined; // routed to the mirror or Docker Hub by the server, not by the reference
    const { host, port } = parseHostPort(registry);
    if (this.permits(host, port)) return undefined;
    const name = normalizeHost(host);
    const addresses = isIP(name) ? [name] : (await resolveAll(name).catch(() => [])).map((a) => a.address);
    const bad = addresses.find(isBlockedAddress);
    if (!bad) return undefined;
    return (
      `${registry}${bad === name ? '' : ` resolves to ${bad}, which`} is a loopback, private, link-local or reserved ` +
      `address; the server reaches such registries only when the operator configured them (STEVEDORE_REGISTRY_ALLOWED_HOSTS)`
    );
  }

  /** The connect-time check of a literal address (`net.connect` does not call `lookup` for those). */
  literalProblem(host: string, port: number): string | undefined {
    const name = normalizeHost(host);
    if (!isIP(name) || this.permits(name, port) || !isBlockedAddress(name)) return undefined;
    return `${name} is a loopback, private, link-local or reserved address that is not configured as a registry`;
  }

  /**
   * A `lookup` for http(s).request to host:port that fails with EREGISTRYFORBIDDEN when a
   * resolved address is blocked and the host is not configured.
   */
  lookupFor(port: number) {
    return (
      hostname: string,
      options: LookupOptions,
      callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
    ): void => {
      dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '');
        const list = addresses;
        const bad = this.permits(hostname, port) ? undefined : list.find((a) => isBlockedAddress(a.address));
        if (bad)
          return callback(
            Object.assign(new Error(`${hostname} resolves to ${bad.address}, which is not a configured registry`), {
              code: 'EREGISTRYFORBIDDEN',
            }),
            '',
          );
        if (options.all) return callback(null, list);
        callback(null, list[0]!.address, list[0]!.family);
      });
    };
  }
}
