import type { Redis } from 'ioredis';
import { analyzeDockerfile } from '../analysis/dockerfile/index.js';
import type { AppConfig } from '../config/config.js';
import type { ContextStore } from '../contexts/context-store.js';
import type { BuildkitClient } from '../engines/buildkit/buildkit-client.js';
import type { CosignClient } from '../engines/cosign/cosign-client.js';
import type { SigningKeys } from '../engines/cosign/signing-keys.js';
import { dockerConfigDir } from '../engines/registry/docker-config.js';
import { analyzeImageInChild } from '../engines/registry/analysis-runner.js';
import type { ImageInspector } from '../engines/registry/image-inspector.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import type { TrivyClient } from '../engines/trivy/trivy-client.js';
import { ACTIONS, type Action } from '../jobs/actions.js';
import type { ArtifactStore } from '../jobs/artifact-store.js';
import type { TenantSecrets } from '../secrets/tenant-secrets.js';
import type { ExceptionStore } from '../exceptions/exception-store.js';
import type { TenantEvents } from '../webhooks/tenant-events.js';
import type { VerdictService } from '../catalogue/verdict-service.js';
import type { CatalogueStore } from '../catalogue/catalogue-store.js';
import { BuildProcessor } from './build.processor.js';
import { InspectProcessor } from './inspect.processor.js';
import { OptimizeProcessor } from './optimize.processor.js';
import { trivyVulnerabilityCounter } from './optimize-vulns.js';
import type { ActionProcessor, AnyProcessor } from './processor.js';
import { PushProcessor } from './push.processor.js';
import type { ScanDeps } from './scan-stage.js';
import { ScanProcessor } from './scan.processor.js';
import type { SigningDeps } from './sign-stage.js';
import { SignProcessor } from './sign.processor.js';
import { VerifyProcessor } from './verify.processor.js';

/** Everything a processor may use: the adapters and stores of the worker process. */
export interface WorkerDeps {
  config: AppConfig;
  inspector: ImageInspector;
  registries: RegistryResolver;
  buildkit: BuildkitClient;
  contexts: ContextStore;
  trivy: TrivyClient;
  cosign: CosignClient;
  keys: SigningKeys;
  artifacts: ArtifactStore;
  redis: Redis;
  tenantSecrets: TenantSecrets;
  /** Tenants' exceptions, applied by scan gates and passed to Trivy as VEX. */
  exceptions?: ExceptionStore;
  /** Tenant-level webhook events (a rescan's `image.vulnerabilities.changed`); absent: none sent. */
  events?: TenantEvents;
  /** The catalogue's verdicts: what a sign or push with `policy` asks before its side effect. */
  verdicts: Pick<VerdictService, 'judge'>;
  /** The image catalogue: a build's `diff` against the previous build of its tags. */
  catalogue?: CatalogueStore;
}

const scanDeps = (d: WorkerDeps): ScanDeps => ({
  trivy: d.trivy,
  inspector: d.inspector,
  artifacts: d.artifacts,
  redis: d.redis,
  cacheTtlSeconds: d.config.jobRetentionSeconds,
  exceptions: d.exceptions,
});
const signingDeps = (d: WorkerDeps): SigningDeps => ({ cosign: d.cosign, keys: d.keys, inspector: d.inspector });
const uploadDir = (d: WorkerDeps) => (digest: string) => d.contexts.path(digest);

/** The processor of every action (jobs/actions.ts): an action without one does not compile. */
export const PROCESSORS: { [A in Action]: (deps: WorkerDeps) => ActionProcessor<A> } = {
  build: (d) =>
    new BuildProcessor({
      buildkit: d.buildkit,
      inspector: d.inspector,
      uploadDir: uploadDir(d),
      uploadStats: (digest) => d.contexts.stats(digest),
      config: d.config,
      tenantSecrets: d.tenantSecrets,
      pipeline: { ...scanDeps(d), ...signingDeps(d), registries: d.registries, catalogue: d.catalogue },
    }),
  scan: (d) => new ScanProcessor({ ...scanDeps(d), events: d.events }),
  push: (d) => new PushProcessor(d.registries, d.inspector, d.verdicts),
  sign: (d) => new SignProcessor(signingDeps(d), d.verdicts),
  verify: (d) => new VerifyProcessor(signingDeps(d)),
  inspect: (d) => new InspectProcessor(d.inspector, d.registries),
  optimize: (d) =>
    new OptimizeProcessor({
      analyzeDockerfile,
      analyzeImage: analyzeImageInChild,
      inspector: d.inspector,
      registries: d.registries,
      uploadDir: uploadDir(d),
      verify:
        d.config.buildkitHost && d.config.registryMirror
          ? {
              buildkit: d.buildkit,
              inspector: d.inspector,
              registries: d.registries,
              countVulnerabilities: trivyVulnerabilityCounter(d.trivy),
              scratchRegistry: d.config.registryMirror,
              smokeRuntime: d.config.smokeRuntime,
              smokeTimeoutSeconds: d.config.smokeTimeoutSeconds,
              dockerConfigDir: dockerConfigDir(d.config.registryAuthFile),
            }
          : undefined,
    }),
};

/** One processor per action, in ACTIONS order. */
export function createProcessors(deps: WorkerDeps): AnyProcessor[] {
  return ACTIONS.map((action): AnyProcessor => PROCESSORS[action](deps));
}
