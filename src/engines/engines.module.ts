import { Global, Module } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { DockerConfigCredentials } from './registry/docker-config.js';
import { ImageInspector } from './registry/image-inspector.js';
import { RegistryResolver } from './registry/registry-resolver.js';
import { BuildkitClient } from './buildkit/buildkit-client.js';
import { ChildProcessRunner } from './process-runner.js';

/** Tool and registry adapters, configured once from AppConfig. */
@Global()
@Module({
  providers: [
    {
      provide: RegistryResolver,
      inject: [APP_CONFIG],
      useFactory: (c: AppConfig) =>
        new RegistryResolver({ dockerHubMirror: c.registryMirror, insecureRegistries: c.insecureRegistries, credentials: DockerConfigCredentials.fromFile(c.registryAuthFile) }),
    },
    { provide: ImageInspector, inject: [RegistryResolver], useFactory: (r: RegistryResolver) => new ImageInspector(r) },
    { provide: BuildkitClient, inject: [APP_CONFIG], useFactory: (c: AppConfig) => new BuildkitClient(new ChildProcessRunner(), c.tools.buildctl, c.buildkitHost ?? '') },
  ],
  exports: [RegistryResolver, ImageInspector, BuildkitClient],
})
export class EnginesModule {}
