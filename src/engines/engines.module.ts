import { Global, Module } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { DockerConfigCredentials } from './registry/docker-config.js';
import { ImageInspector } from './registry/image-inspector.js';
import { RegistryResolver } from './registry/registry-resolver.js';
import { RegistryGuard } from './registry/registry-guard.js';
import { BuildkitClient } from './buildkit/buildkit-client.js';
import { ChildProcessRunner } from './process-runner.js';
import { buildctlWithTls } from './buildctl-tls.js';
import { TrivyClient } from './trivy/trivy-client.js';
import { TrivyDbLifecycle } from './trivy/trivy-db-lifecycle.js';
import { CosignClient } from './cosign/cosign-client.js';
import { SigningKeys } from './cosign/signing-keys.js';
import { basename, dirname } from 'node:path';

/** Tool and registry adapters, configured once from AppConfig. */
@Global()
@Module({
  providers: [
    {
      provide: RegistryResolver,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) =>
        new RegistryResolver({
          dockerHubMirror: c.registryMirror,
          insecureRegistries: c.insecureRegistries,
          credentials: DockerConfigCredentials.fromFile(c.registryAuthFile),
          guard: RegistryGuard.fromConfig(c),
        }),
    },
    { provide: ImageInspector, inject: [RegistryResolver], useFactory: (r: RegistryResolver) => new ImageInspector(r) },
    {
      provide: BuildkitClient,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) =>
        new BuildkitClient(buildctlWithTls(new ChildProcessRunner(), c.buildkitTlsDir), c.tools.buildctl, c.buildkitHost ?? ''),
    },
    {
      provide: TrivyClient,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) =>
        new TrivyClient(new ChildProcessRunner(), {
          trivy: c.tools.trivy,
          ...c.trivy,
          insecureRegistries: c.insecureRegistries,
          // Trivy reads registry credentials from $DOCKER_CONFIG/config.json.
          dockerConfigDir: c.registryAuthFile && basename(c.registryAuthFile) === 'config.json' ? dirname(c.registryAuthFile) : undefined,
        }),
    },
    TrivyDbLifecycle,
    { provide: SigningKeys, inject: [APP_CONFIG], useFactory: (c: AppConfig) => SigningKeys.fromFile(c.signing.keysFile) },
    {
      provide: CosignClient,
      inject: [APP_CONFIG, SigningKeys],
      useFactory: (c: AppConfig, keys: SigningKeys) =>
        new CosignClient(new ChildProcessRunner(), keys, {
          cosign: c.tools.cosign,
          offline: c.signing.offline,
          insecureRegistries: c.insecureRegistries,
          dockerConfigDir: c.registryAuthFile && basename(c.registryAuthFile) === 'config.json' ? dirname(c.registryAuthFile) : undefined,
        }),
    },
  ],
  exports: [RegistryResolver, ImageInspector, BuildkitClient, TrivyClient, SigningKeys, CosignClient],
})
export class EnginesModule {}
