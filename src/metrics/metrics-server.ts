import { createServer, type Server } from 'node:http';
import { METRICS_CONTENT_TYPE, renderMetrics } from './metrics.js';

/**
 * A worker has no REST server; this small one serves its /metrics (and /healthz for a
 * liveness probe) on STEVEDORE_METRICS_PORT so every worker pod can be scraped.
 */
export async function startMetricsServer(host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET') return void res.writeHead(405).end();
    if (req.url === '/healthz') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
    if (req.url !== '/metrics') return void res.writeHead(404).end();
    renderMetrics().then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE }).end(text),
      () => res.writeHead(500).end(),
    );
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve));
  return server;
}
