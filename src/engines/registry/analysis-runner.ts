import { fileURLToPath } from 'node:url';
import type { AnalysisAnswer, AnalysisRequest } from './analysis-child.js';
import type { ImageAnalysis } from './image-analysis.js';
import type { PlatformCheck } from './platform-check.js';
import type { RegistryClient } from './registry-client.js';
import { RegistryError } from './registry-errors.js';
import { forkNodeChild } from '../node-child.js';

const CHILD = fileURLToPath(new URL('./analysis-child.js', import.meta.url));
/** The entry lists of every layer are held until they are stacked: about 200 bytes an entry. */
const HEAP_MB = 1024;
/** What the child may see of this process's environment: how to trust and reach a registry, nothing else. */
const PASSED_ENV = ['NODE_EXTRA_CA_CERTS', 'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_USE_ENV_PROXY', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'];

/**
 * analyzeImage() in a child process. Streaming a few hundred megabytes of layers through
 * sha256, zlib and the tar reader is seconds of CPU; on the server's own event loop (and
 * its libuv threadpool, at the same priority) it made every REST, gRPC and SSE answer
 * wait behind it. The child runs at a lower CPU priority with its own threadpool and heap
 * limit (a hostile image of millions of files fails the job, not the server), and is
 * killed when the job's signal aborts. Only the small result comes back.
 */
export function analyzeImageInChild(
  client: RegistryClient,
  repository: string,
  manifestDigest: string,
  options: { signal?: AbortSignal; largestFiles?: number } = {},
): Promise<ImageAnalysis> {
  const request = { client: client.settings, kind: 'analyze' as const, repository, manifestDigest, largestFiles: options.largestFiles };
  return inChild(request, `${repository}@${manifestDigest}`, options.signal) as Promise<ImageAnalysis>;
}

/** checkImagePlatforms() (every platform of an image or index) in a child process, as analyzeImageInChild. */
export function checkImagePlatformsInChild(
  client: RegistryClient,
  image: { repository: string; digest: string },
  options: { signal?: AbortSignal; limit?: number } = {},
): Promise<PlatformCheck[]> {
  const request = { client: client.settings, kind: 'platforms' as const, ...image, limit: options.limit };
  return inChild(request, `${image.repository}@${image.digest}`, options.signal) as Promise<PlatformCheck[]>;
}

/** checkPlatform() (one platform manifest) in a child process, as analyzeImageInChild. */
export function checkPlatformInChild(
  client: RegistryClient,
  manifest: { repository: string; digest: string },
  platform?: string,
  options: { signal?: AbortSignal; limit?: number } = {},
): Promise<PlatformCheck> {
  const request = { client: client.settings, kind: 'platform' as const, ...manifest, platform, limit: options.limit };
  return inChild(request, `${manifest.repository}@${manifest.digest}`, options.signal) as Promise<PlatformCheck>;
}

function inChild(request: AnalysisRequest, image: string, signal?: AbortSignal): Promise<unknown> {
  if (signal?.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<unknown>((resolve, reject) => {
    const env = Object.fromEntries(PASSED_ENV.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]));
    const { child, stderrTail, outOfMemory } = forkNodeChild(CHILD, HEAP_MB, env);
    let outcome: (() => void) | undefined;
    const onAbort = () => settle(() => reject(signal!.reason as Error));
    signal?.addEventListener('abort', onAbort, { once: true });
    // Settles once the child is gone, so a cancelled job leaves no analysis behind.
    const settle = (then: () => void) => {
      outcome ??= then;
      if (child.pid === undefined) done();
      else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const done = () => {
      signal?.removeEventListener('abort', onAbort);
      outcome!();
    };
    child.on('message', (answer: AnalysisAnswer) => {
      if (answer.ok) return settle(() => resolve(answer.value));
      settle(() => reject(answer.kind ? new RegistryError(answer.kind, answer.message, answer.status) : new Error(answer.message)));
    });
    child.on('error', (err) => settle(() => reject(err)));
    child.on('exit', (code, sig) => {
      if (!outcome) {
        if (outOfMemory())
          outcome = () => reject(new RegistryError('protocol', `${image} has more files than its analysis can hold in memory`));
        else outcome = () => reject(new Error(`the image analysis exited (${sig ?? `code ${code}`}) without an answer: ${stderrTail()}`));
      }
      done();
    });
    if (child.pid !== undefined) child.send(request, (err) => err && settle(() => reject(err)));
  });
}
