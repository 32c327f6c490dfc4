import { Global, Module } from '@nestjs/common';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { DockerConfigCredentials } from './registry/docker-config.js';
import { ImageInspector } from './registry/image-inspector.js';
import { RegistryResolver } from './registry/registry-resolver.js';

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
  ],
  exports: [RegistryResolver, ImageInspector],
})
export class EnginesModule {}
