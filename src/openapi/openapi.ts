import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { STEVEDORE_VERSION } from '../version.js';

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('stevedore')
    .setDescription(
      'One API for the container-image supply chain: build, optimize, scan, sign, verify, push, inspect. ' +
        'Every error answer has the shape `{"error": {"code", "message", "details"}}`.',
    )
    .setVersion(STEVEDORE_VERSION)
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'The admin token (STEVEDORE_TOKEN, or <state dir>/admin-token under `serve`).' })
    .build();
  return SwaggerModule.createDocument(app, config);
}

/** Swagger UI at /docs and the document at /openapi.json. */
export function serveOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
}
