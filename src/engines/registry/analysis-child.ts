import { setPriority } from 'node:os';
import { analyzeImage, type ImageAnalysis } from './image-analysis.js';
import { checkImagePlatforms, checkPlatform, type PlatformCheck } from './platform-check.js';
import { RegistryClient, type RegistryClientSettings } from './registry-client.js';
import { RegistryError, type RegistryErrorKind } from './registry-errors.js';

/**
 * Entry point of the layer-streaming child process (forked by analysis-runner.ts): one
 * request in over IPC, one answer out, then exit.
 */
export type AnalysisRequest = { client: RegistryClientSettings } & (
  | { kind: 'analyze'; repository: string; manifestDigest: string; largestFiles?: number }
  | { kind: 'platforms'; repository: string; digest: string; limit?: number }
  | { kind: 'platform'; repository: string; digest: string; platform?: string; limit?: number }
);

export type AnalysisAnswer =
  | { ok: true; value: ImageAnalysis | PlatformCheck[] | PlatformCheck }
  | { ok: false; kind?: RegistryErrorKind; status?: number; message: string };

// Before anything else, so libuv's threadpool (started lazily, where inflating runs)
// inherits it: on a small machine the API's event loop wins the CPU.
try {
  setPriority(10);
} catch {
  // not allowed here: run at normal priority
}
// The parent went away (it was killed, or the job was cancelled): nobody waits for this.
process.on('disconnect', () => process.exit(1));

function answer(message: AnalysisAnswer): void {
  process.send!(message, () => process.exit(0));
}

function run(request: AnalysisRequest): Promise<ImageAnalysis | PlatformCheck[] | PlatformCheck> {
  const client = RegistryClient.fromSettings(request.client);
  const image = { repository: request.repository, digest: request.kind === 'analyze' ? request.manifestDigest : request.digest };
  if (request.kind === 'analyze')
    return analyzeImage(client, request.repository, request.manifestDigest, { largestFiles: request.largestFiles });
  if (request.kind === 'platforms') return checkImagePlatforms(client, image, { limit: request.limit });
  return checkPlatform(client, image, request.platform, { limit: request.limit });
}

process.once('message', (request: AnalysisRequest) => {
  run(request).then(
    (value) => answer({ ok: true, value }),
    (err: unknown) =>
      answer(
        err instanceof RegistryError
          ? { ok: false, kind: err.kind, status: err.status, message: err.message }
          : { ok: false, message: err instanceof Error ? err.message : String(err) },
      ),
  );
});
