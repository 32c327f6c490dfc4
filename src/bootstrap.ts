import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { Logger } from 'nestjs-pino';
import { ApiExceptionFilter } from './api/errors/api-exception.filter.js';
import { AppModule, type Roles } from './app.module.js';
import type { AppConfig } from './config/config.js';
import { grpcServerOptions, setGrpcServing } from './grpc/grpc-options.js';
import { serveOpenApi } from './openapi/openapi.js';

/** Builds the Nest application for the given roles, without listening. */
export async function createApp(config: AppConfig, roles: Roles): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({ bodyLimit: 10 * 1024 * 1024, routerOptions: { ignoreTrailingSlash: true } });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config, roles), adapter, { bufferLogs: true, abortOnError: false });
  app.useLogger(app.get(Logger));
  app.useGlobalFilters(new ApiExceptionFilter());
  if (roles.api) {
    serveOpenApi(app);
    app.connectMicroservice(grpcServerOptions(config.grpc.port));
  }
  return app;
}

/** Creates and starts the application: HTTP and gRPC for the api role. */
export async function startApp(config: AppConfig, roles: Roles): Promise<NestFastifyApplication> {
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
