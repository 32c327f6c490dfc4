import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Keys Docker uses for Docker Hub in config.json. */
const HUB_KEYS = ['https://index.docker.io/v1/', 'index.docker.io', 'docker.io', 'registry-1.docker.io'];

/**
 * Registry credentials from a Docker `config.json` (server-side configuration; never
 * from a job body). Only `auths` entries are read: credential helpers would run other
 * programs, which the service does not do.
 */
export class DockerConfigCredentials {
  private readonly auths: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;

  constructor(json: string) {
    const parsed = JSON.parse(json) as { auths?: DockerConfigCredentials['auths'] };
    this.auths = parsed.auths ?? {};
  }

  static fromFile(path: string | undefined): DockerConfigCredentials {
    if (!path) return new DockerConfigCredentials('{}');
    return new DockerConfigCredentials(readFileSync(path, 'utf8'));
  }

  lookup(registry: string): RegistryCredentials | undefined {
    const keys = registry === 'docker.io' ? HUB_KEYS : [registry, `https://${registry}`, `http://${registry}`];
    for (const key of keys) {
      const entry = this.auths[key] ?? this.auths[`${key}/`];
      if (!entry) continue;
      if (entry.username && entry.password) return { username: entry.username, password: entry.password };
      if (entry.auth) {
        const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
        const i = decoded.indexOf(':');
        if (i > 0) return { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
      }
    }
    return undefined;
  }
}

/**
 * The DOCKER_CONFIG directory for tools that read `$DOCKER_CONFIG/config.json` (buildctl,
 * Trivy, cosign): the auth file's directory when the file is named config.json.
 */
export function dockerConfigDir(registryAuthFile: string | undefined): string | undefined {
  return registryAuthFile && basename(registryAuthFile) === 'config.json' ? dirname(registryAuthFile) : undefined;
}
