import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { SUBMIT_OPERATION } from '../api/submit-route.js';
import { ERROR_SCHEMA } from './openapi-schemas.js';
import { STEVEDORE_VERSION } from '../version.js';

/**
 * What AuthGuard answers on every route it guards, before the handler runs: declared
 * here once for each operation with a bearer `security` requirement (unless the handler
 * declares its own), so no guarded operation leaves them out of the document.
 */
const AUTH_RESPONSES: Record<string, string> = {
  '401': 'Missing or wrong token.',
  '403': 'The API key lacks the scope this operation needs.',
  '429': "Over the API key's rate limit; Retry-After gives the seconds to wait.",
};
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

function addAuthResponses(document: OpenAPIObject): OpenAPIObject {
  for (const item of Object.values(document.paths)) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation?.security?.some((requirement) => 'bearer' in requirement)) continue;
      for (const [status, description] of Object.entries(AUTH_RESPONSES)) {
        operation.responses[status] ??= { description, content: { 'application/json': { schema: ERROR_SCHEMA } } };
      }
    }
  }
  return document;
}

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('stevedore')
    .setDescription(
      'One API for the container-image supply chain: build, optimize, scan, sign, verify, push, inspect. ' +
        'Every error answer has the shape `{"error": {"code", "message", "details"}}`.',
    )
    .setVersion(STEVEDORE_VERSION)
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      description: 'The admin token (STEVEDORE_TOKEN, or <state dir>/admin-token under `serve`).',
    })
    .build();
  const document = SwaggerModule.createDocument(app, config);
  // POST /v1/jobs is a plain Fastify route (api/submit-route.ts): Nest's scan cannot see it.
  document.paths['/v1/jobs'] = { post: structuredClone(SUBMIT_OPERATION), ...document.paths['/v1/jobs'] };
  return addAuthResponses(document);
}

/** Swagger UI at /docs and the document at /openapi.json. */
export function serveOpenApi(app: INestApplication): void {
  SwaggerModule.setup('docs', app, buildOpenApiDocument(app), { jsonDocumentUrl: 'openapi.json', yamlDocumentUrl: 'openapi.yaml' });
}
