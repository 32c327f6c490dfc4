import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { setFlagsFromString } from 'node:v8';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { ApiExceptionFilter } from './api/api-exception.filter.js';
import { AppModule, type Roles } from './app.module.js';

export type { Roles } from './app.module.js';
import type { AppConfig } from './config/config.js';
import { grpcServerOptions, setGrpcServing } from './grpc/grpc-options.js';
import { serveOpenApi } from './openapi/openapi.js';
import { httpRequests } from './metrics/metrics.js';
import { createLogger } from './config/logger.js';
import { mountQueueBoard } from './ui/queue-board.js';
import { mountSubmitRoute } from './api/submit-route.js';

/**
 * A caller's x-request-id when it is sane, else a new UUID; written back onto the
 * request so the pino request log (which reads the header) carries the same id.
 */
function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  const id = typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
  req.headers['x-request-id'] = id;
  return id;
}

/** Builds the Nest application for the given roles, without listening. */
export async function createApp(config: AppConfig, roles: Roles): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    routerOptions: { ignoreTrailingSlash: true },
    genReqId: requestId,
  });
  // The API takes JSON only: anything else is a 415, not a string body to misread.
  adapter.getInstance().removeContentTypeParser('text/plain');
  // Build contexts arrive as tar streams: handed through unread, the store enforces
  // its own size limit while it streams them to disk.
  adapter
    .getInstance()
    .addContentTypeParser(['application/x-tar', 'application/gzip', 'application/x-gzip'], (_request, payload, done) =>
      done(null, payload),
    );
  adapter.getInstance().addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // One JSON line per request (probes excluded) and the HTTP metrics, from Fastify's own
  // hook: every route, including 404s and requests refused before a controller runs.
  // Route templates, not URLs, label the metrics, so job ids never become label values.
  const requestLog = createLogger(config.logLevel).child({ context: 'http' });
  adapter.getInstance().addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    httpRequests.observe({ method: request.method, route, status: String(reply.statusCode) }, reply.elapsedTime / 1000);
    if (route === '/healthz' || route === '/readyz' || route === '/metrics') return;
    const tenant = (request as { principal?: { tenant: string } }).principal?.tenant;
    requestLog.info(
      {
        req: { id: request.id, method: request.method, url: request.url.split('?')[0], route },
        res: { statusCode: reply.statusCode },
        responseTime: Math.round(reply.elapsedTime * 10) / 10,
        ...(tenant ? { tenant } : {}),
      },
      'request completed',
    );
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, roles), adapter, {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(Logger));
  app.useGlobalFilters(new ApiExceptionFilter());
  if (roles.api) {
    mountSubmitRoute(app);
    serveOpenApi(app);
    await mountQueueBoard(app);
    app.connectMicroservice(grpcServerOptions(config.grpc.port));
  }
  return app;
}

/**
 * Bodies streamed through this process (a 500 MiB context upload) are read into socket
 * buffers outside V8's heap. By default V8 answers each ~64 MB of such memory with a full
 * mark-compact of the whole heap: a dozen 20-150 ms pauses of the event loop per 500 MiB
 * upload, measured (test/integration/event-loop.test.ts). Counted in the heap's global
 * limit instead, they are freed by the cheap young-generation collections that free the
 * buffers anyway: no full GC in that upload, for about 70 MB more peak RSS. Node 24's V8
 * has the flag; older ones would print that they do not know it.
 */
function tuneGarbageCollection(): void {
  if (Number(process.versions.node.split('.')[0]) >= 24) setFlagsFromString('--external-memory-accounted-in-global-limit');
}

/** Creates and starts the application: HTTP and gRPC for the api role. */
export async function startApp(config: AppConfig, roles: Roles): Promise<NestFastifyApplication> {
  tuneGarbageCollection();
  const app = await createApp(config, roles);
  if (roles.api) {
    await app.startAllMicroservices();
    await app.listen(config.http.port, config.http.host);
    setGrpcServing(true);
  } else {
    await app.init();
  }
  return app;
}

export async function stopApp(app: NestFastifyApplication): Promise<void> {
  setGrpcServing(false);
  await app.close();
}
