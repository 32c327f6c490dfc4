import { Body, Controller, Get, Headers, HttpCode, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AdmissionService } from '../admission/admission.service.js';
import { JobService } from '../jobs/job.service.js';
import { ACTIONS, JOB_STATES, type JobRecord } from '../jobs/job-types.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { listJobsQuerySchema } from '../jobs/job-request.schema.js';
import {
  ERROR_SCHEMA,
  INSPECT_REQUEST_EXAMPLE,
  JOB_LIST_SCHEMA,
  JOB_REQUEST_SCHEMA,
  JOB_SCHEMA,
  SUBMITTED_SCHEMA,
} from '../openapi/openapi-schemas.js';
import { validate } from '../errors/validation.js';

const errors = (...codes: [number, string][]) =>
  codes.map(([status, description]) => ApiResponse({ status, description, schema: ERROR_SCHEMA }));
const applyAll =
  (decorators: MethodDecorator[]): MethodDecorator =>
  (target, key, descriptor) => {
    for (const d of decorators) d(target, key, descriptor);
  };

export function submittedView(job: JobRecord) {
  const self = `/v1/jobs/${job.id}`;
  return { id: job.id, action: job.action, state: job.state, links: { self, events: `${self}/events`, cancel: `${self}/cancel` } };
}

@ApiTags('jobs')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('v1/jobs')
export class JobsController {
  constructor(
    private readonly jobs: JobService,
    private readonly admission: AdmissionService,
  ) {}

  @Post()
  @RequireScope('jobs:write')
  @ApiOperation({ summary: 'Submit a job. Answers 202 at once; follow it with GET /v1/jobs/{id}/events.' })
  @ApiBody({ schema: { ...JOB_REQUEST_SCHEMA, example: INSPECT_REQUEST_EXAMPLE } })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Same key + same body returns the original job (200); same key + different body is 409.',
  })
  @ApiResponse({ status: 202, description: 'Queued.', schema: SUBMITTED_SCHEMA })
  @ApiResponse({ status: 200, description: 'An earlier job with the same Idempotency-Key and body.', schema: SUBMITTED_SCHEMA })
  @applyAll(
    errors(
      [
        400,
        'Invalid body (error.details.fields lists each field path), or REGISTRY_FORBIDDEN (an image on a loopback, ' +
          'private, link-local or metadata address that is not a configured registry; details.path names the field).',
      ],
      [401, 'Missing or wrong token.'],
      [
        403,
        'FORBIDDEN (missing scope) or REPOSITORY_FORBIDDEN (an image outside the API key’s repositories; details.path names the field).',
      ],
      [409, 'Idempotency-Key reused with a different body.'],
      [413, 'Body over the limit.'],
      [415, 'Not JSON.'],
    ),
  )
  async submit(
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ) {
    const { job, created } = await this.admission.submit(body, principal, { idempotencyKey, requestId: String(reply.request.id) });
    void reply.status(created ? 202 : 200).header('location', `/v1/jobs/${job.id}`);
    return submittedView(job);
  }

  @Get()
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "List the caller's jobs (its tenant's), newest first, with cursor pagination." })
  @ApiQuery({ name: 'state', required: false, enum: [...JOB_STATES] })
  @ApiQuery({ name: 'action', required: false, enum: [...ACTIONS] })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } })
  @ApiQuery({
    name: 'cursor',
    required: false,
    description: 'next_cursor of the previous page',
    schema: { type: 'string', maxLength: 200 },
  })
  @ApiResponse({ status: 200, schema: JOB_LIST_SCHEMA })
  @applyAll(errors([400, 'Invalid query.'], [401, 'Missing or wrong token.']))
  list(@Query() query: unknown, @CurrentPrincipal() principal: Principal) {
    const filter = validate(listJobsQuerySchema, query, 'query');
    return this.jobs.list({ ...filter, tenant: principal.tenant, state: filter.state as JobRecord['state'] | undefined });
  }

  @Get(':id')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: 'A job record.' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 200, schema: JOB_SCHEMA })
  @applyAll(errors([401, 'Missing or wrong token.'], [404, 'No such job.']))
  get(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return this.jobs.get(id, principal.tenant);
  }

  @Post(':id/cancel')
  @RequireScope('jobs:write')
  @HttpCode(202)
  @ApiOperation({ summary: 'Cancel a job: a queued one at once, a running one by aborting its work.' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 202, schema: JOB_SCHEMA })
  @applyAll(errors([401, 'Missing or wrong token.'], [404, 'No such job.'], [409, 'The job already finished.']))
  cancel(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return this.jobs.cancel(id, principal.tenant);
  }
}
