import { credentials, loadPackageDefinition, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_ROOT, STEVEDORE_PROTOS } from '../../src/grpc/grpc-options.js';

/** A plain grpc-js client of stevedore.v1.Jobs, as a platform would write one. */
export function jobsClient(address: string, token?: string) {
  const def = loadSync(STEVEDORE_PROTOS, { keepCase: true, defaults: true, oneofs: true, includeDirs: [PROTO_ROOT] });
  const pkg = loadPackageDefinition(def) as any;
  const client = new pkg.stevedore.v1.Jobs(address, credentials.createInsecure());
  const md = () => {
    const m = new Metadata();
    if (token) m.set('authorization', `Bearer ${token}`);
    return m;
  };
  const unary = (method: string, req: object): Promise<any> =>
    new Promise((resolve, reject) =>
      client[method](req, md(), (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res))),
    );
  return {
    submit: (req: object) => unary('Submit', req),
    get: (id: string) => unary('Get', { id }),
    list: (req: object) => unary('List', req),
    cancel: (id: string) => unary('Cancel', { id }),
    watch(id: string, afterEventId = ''): Promise<any[]> {
      return new Promise((resolve, reject) => {
        const events: any[] = [];
        const stream = client.Watch({ id, after_event_id: afterEventId }, md());
        stream.on('data', (e: any) => events.push({ ...e, data: JSON.parse(e.data_json) }));
        stream.on('end', () => resolve(events));
        stream.on('error', reject);
      });
    },
    close: () => client.close(),
  };
}
