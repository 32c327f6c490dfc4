import { DOCKER_HUB, isLoopbackRegistry } from '../references.js';
import type { DockerConfigCredentials } from './docker-config.js';
import { RegistryClient } from './registry-client.js';

export interface RegistryResolverOptions {
  /** host:port serving Docker Hub's content (the BuildKit docker.io mirror). */
  dockerHubMirror?: string;
  /** Hosts reached over plain HTTP besides loopback. */
  insecureRegistries?: string[];
  credentials: DockerConfigCredentials;
}

/**
 * One RegistryClient per registry host (so bearer tokens are reused), with Docker
 * Hub routed through the mirror when one is configured.
 */
export class RegistryResolver {
  private readonly clients = new Map<string, RegistryClient>();

  constructor(private readonly options: RegistryResolverOptions) {}

  clientFor(registry: string): RegistryClient {
    const host = registry === DOCKER_HUB ? (this.options.dockerHubMirror ?? 'registry-1.docker.io') : registry;
    let client = this.clients.get(host);
    if (!client) {
      const insecure = isLoopbackRegistry(host) || (this.options.insecureRegistries ?? []).includes(host);
      client = new RegistryClient(host, { insecure, credentials: this.options.credentials.lookup(registry === DOCKER_HUB ? DOCKER_HUB : host) });
      this.clients.set(host, client);
    }
    return client;
  }
}
