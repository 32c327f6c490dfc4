import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import { PROTO_ROOT, STEVEDORE_PROTOS } from '../../src/grpc/grpc-options.js';

type Unary = (req: object, md: Metadata, cb: (err: ServiceError | null, res: any) => void) => void;
type Client = Record<string, Unary> & { close(): void };

function clients(address: string) {
  const def = loadSync([...STEVEDORE_PROTOS, healthProtoPath], {
    keepCase: true,
    defaults: true,
    enums: String,
    includeDirs: [PROTO_ROOT],
  });
  const pkg = loadPackageDefinition(def) as any;
  return {
    health: new pkg.grpc.health.v1.Health(address, credentials.createInsecure()) as Client,
    system: new pkg.stevedore.v1.SystemService(address, credentials.createInsecure()) as Client,
  };
}

function call(client: Client, method: string, req: object, token?: string): Promise<any> {
  const md = new Metadata();
  if (token) md.set('authorization', `Bearer ${token}`);
  return new Promise((resolve, reject) => client[method]!(req, md, (err, res) => (err ? reject(err) : resolve(res))));
}

/** grpc.health.v1.Health/Check for `service` ('' = the server). */
export async function grpcHealthCheck(address: string, service = ''): Promise<string> {
  const { health } = clients(address);
  try {
    return (await call(health, 'Check', { service })).status as string;
  } finally {
    health.close();
  }
}

export async function grpcSystemInfo(address: string, token?: string): Promise<any> {
  const { system } = clients(address);
  try {
    return await call(system, 'GetInfo', {}, token);
  } finally {
    system.close();
  }
}

/** Service names the server lists through grpc.reflection.v1 (what grpcurl `list` shows). */
export async function grpcReflectionServices(address: string): Promise<string[]> {
  const protoFile = new URL('../../../node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto', import.meta.url)
    .pathname;
  const pkg = loadPackageDefinition(loadSync(protoFile, { keepCase: true, defaults: true })) as any;
  const client = new pkg.grpc.reflection.v1.ServerReflection(address, credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const stream = client.ServerReflectionInfo();
      stream.on('data', (res: any) => {
        resolve((res.list_services_response?.service ?? []).map((s: { name: string }) => s.name));
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
  } finally {
    client.close();
  }
}
