import { DOCKER_HUB, isLoopbackRegistry } from '../../oci/references.js';
import type { DockerConfigCredentials } from './docker-config.js';
import { RegistryClient } from './registry-client.js';
import type { RegistryGuard } from './registry-guard.js';

export interface RegistryResolverOptions {
  /** host:port serving Docker Hub's content (the BuildKit docker.io mirror). */
  dockerHubMirror?: string;
  /** Hosts reached over plain HTTP besides loopback. */
  insecureRegistries?: string[];
  credentials: DockerConfigCredentials;
  /** Every registry a job names is reached through this guard (RegistryGuard.fromConfig). */
  guard: RegistryGuard;
}

/**
 * One RegistryClient per registry host (so bearer tokens are reused), with Docker
 * Hub routed through the mirror when one is configured.
 */
export class RegistryResolver {
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly options: RegistryResolverOptions) {}

  clientFor(registry: string): RegistryClient {
    const mirror = registry === DOCKER_HUB ? this.options.dockerHubMirror : undefined;
    const host = registry === DOCKER_HUB ? (mirror ?? 'registry-1.docker.io') : registry;
    let client = this.clients.get(host);
    if (!client) {
      const insecure = isLoopbackRegistry(host) || (this.options.insecureRegistries ?? []).includes(host);
      // Credentials are those of the host the requests go to: through a mirror, the
      // mirror's own (serve's embedded registry wants its password), never Docker Hub's.
      client = new RegistryClient(host, {
        insecure,
        credentials: this.options.credentials.lookup(mirror ?? registry),
        guard: this.options.guard,
      });
      this.clients.set(host, client);
    }
    return client;
  }
}
