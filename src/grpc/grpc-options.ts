import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Transport, type GrpcOptions } from '@nestjs/microservices';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as healthProtoPath } from 'grpc-health-check';
import type { Server } from '@grpc/grpc-js';

export const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));
export const STEVEDORE_PROTOS = readdirSync(join(PROTO_ROOT, 'stevedore', 'v1'))
  .filter((f) => f.endsWith('.proto'))
  .map((f) => join(PROTO_ROOT, 'stevedore', 'v1', f));

const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] };

/** Standard grpc.health.v1.Health; '' is the whole server. */
const SERVICES = ['', 'stevedore.v1.SystemService', 'stevedore.v1.Jobs'];
export const grpcHealth = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, 'NOT_SERVING' as const])));

export function setGrpcServing(serving: boolean): void {
  for (const service of SERVICES) grpcHealth.setStatus(service, serving ? 'SERVING' : 'NOT_SERVING');
}

/**
 * Nest serves stevedore.v1; the standard health service and server reflection (so
 * grpcurl works without proto files) are added to the same grpc-js server.
 */
export function grpcServerOptions(port: number): GrpcOptions {
  return {
    transport: Transport.GRPC,
    options: {
      url: `0.0.0.0:${port}`,
      package: 'stevedore.v1',
      protoPath: STEVEDORE_PROTOS,
      loader: LOADER_OPTIONS,
      gracefulShutdown: true,
      onLoadPackageDefinition: (_pkg: unknown, server: Server) => {
        // Reflection describes everything the server answers, health included.
        const described = loadSync([...STEVEDORE_PROTOS, healthProtoPath], LOADER_OPTIONS);
        new ReflectionService(described).addToServer(server);
        grpcHealth.addToServer(server);
      },
    },
  };
}
