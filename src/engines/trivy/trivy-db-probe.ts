import { isLoopbackRegistry, parseHostPort, parseImageReference } from '../../oci/references.js';

/**
 * Whether a DB repository's registry answers at all: one GET of `/v2/` with a short
 * time limit. Any HTTP answer (401 is the usual one) counts; a refused connection, a
 * DNS failure, a TLS failure or silence does not. It decides whether `auto` lets Trivy
 * try a download, so an offline install never waits for Trivy's own retries.
 */
export const PROBE_TIMEOUT_MS = 3_000;

const PRIVATE_V4 = /^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.)/;

/** The schemes Trivy's registry client (go-containerregistry) would try for this host, in order. */
export function probeSchemes(registry: string, insecureRegistries: readonly string[]): ('http' | 'https')[] {
  const { host } = parseHostPort(registry);
  if (isLoopbackRegistry(registry) || insecureRegistries.includes(registry) || host.endsWith('.local')) return ['http'];
  // Like go-containerregistry: private addresses get https first, then plain http.
  if (PRIVATE_V4.test(host)) return ['https', 'http'];
  return ['https'];
}

/** The registry host a repository such as `mirror.gcr.io/aquasec/trivy-db:2` lives on. */
export function repositoryRegistry(repository: string): string {
  const { registry } = parseImageReference(repository);
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}

export async function registryAnswers(
  registry: string,
  insecureRegistries: readonly string[],
  timeoutMs = PROBE_TIMEOUT_MS,
): Promise<boolean> {
  for (const scheme of probeSchemes(registry, insecureRegistries)) {
    try {
      const res = await fetch(`${scheme}://${registry}/v2/`, { redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      return true;
    } catch {
      // next scheme, or unreachable
    }
  }
  return false;
}
