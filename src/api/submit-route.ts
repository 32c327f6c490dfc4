import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { OperationObject } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AdmissionService } from '../admission/admission.service.js';
import { Authenticator } from '../auth/authenticator.js';
import { authorize } from '../auth/authorize.js';
import type { Principal } from '../auth/principal.js';
import { ERROR_SCHEMA, INSPECT_REQUEST_EXAMPLE, JOB_REQUEST_SCHEMA, SUBMITTED_SCHEMA } from '../openapi/openapi-schemas.js';
import { sendError } from './api-exception.filter.js';
import { submittedView } from './jobs.controller.js';

/**
 * POST /v1/jobs, the one hot path of the API, served by Fastify directly instead of through
 * Nest's guard, pipe, interceptor and filter chain: bench/submit measured that chain at
 * about a fifth of the route's CPU. It keeps everything that matters to a caller: the same
 * authorize() as AuthGuard, the same AdmissionService as gRPC, the same error shape
 * (sendError, also for Fastify's own 400/413/415), and the app-wide hooks (x-request-id,
 * the request log line, the HTTP metrics). Its OpenAPI operation is SUBMIT_OPERATION.
 */
export function mountSubmitRoute(app: NestFastifyApplication): void {
  const authenticator = app.get(Authenticator);
  const admission = app.get(AdmissionService);
  const logger = new Logger('SubmitRoute');
  app
    .getHttpAdapter()
    .getInstance()
    .route({
      method: 'POST',
      url: '/v1/jobs',
      errorHandler: (error: unknown, request: FastifyRequest, reply: FastifyReply) => sendError(reply, request.id, error, logger),
      handler: async (request: FastifyRequest & { principal?: Principal }, reply: FastifyReply) => {
        const principal = await authorize(authenticator, request.headers.authorization, 'jobs:write');
        request.principal = principal; // the request log line names the tenant
        const idempotencyKey = request.headers['idempotency-key'];
        const { job, created } = await admission.submit(request.body, principal, {
          idempotencyKey: Array.isArray(idempotencyKey) ? idempotencyKey.join(', ') : idempotencyKey,
          requestId: String(request.id),
        });
        return reply
          .status(created ? 202 : 200)
          .header('location', `/v1/jobs/${job.id}`)
          .send(submittedView(job));
      },
    });
}

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: ERROR_SCHEMA } } });
const submitted = (description: string) => ({ description, content: { 'application/json': { schema: SUBMITTED_SCHEMA } } });

/** The route's OpenAPI operation (openapi/openapi.ts adds it to the document beside the controllers'). */
export const SUBMIT_OPERATION: OperationObject = {
  operationId: 'JobsController_submit',
  parameters: [
    {
      name: 'Idempotency-Key',
      in: 'header',
      description: 'Same key + same body returns the original job (200); same key + different body is 409.',
      required: false,
      schema: { type: 'string' },
    },
  ],
  requestBody: {
    required: true,
    content: { 'application/json': { schema: { ...JOB_REQUEST_SCHEMA, example: INSPECT_REQUEST_EXAMPLE } } },
  },
  responses: {
    '200': submitted('An earlier job with the same Idempotency-Key and body.'),
    '202': submitted('Queued.'),
    '400': errorResponse(
      'Invalid body (error.details.fields lists each field path), or REGISTRY_FORBIDDEN (an image on a loopback, ' +
        'private, link-local or metadata address that is not a configured registry; details.path names the field).',
    ),
    '401': errorResponse('Missing or wrong token.'),
    '403': errorResponse(
      'FORBIDDEN (missing scope) or REPOSITORY_FORBIDDEN (an image outside the API key’s repositories; details.path names the field).',
    ),
    '409': errorResponse('Idempotency-Key reused with a different body.'),
    '413': errorResponse('Body over the limit.'),
    '415': errorResponse('Not JSON.'),
  },
  security: [{ bearer: [] }],
  summary: 'Submit a job. Answers 202 at once; follow it with GET /v1/jobs/{id}/events.',
  tags: ['jobs'],
};
