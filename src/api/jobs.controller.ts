import { Controller, Get, HttpCode, Param, Post, Query, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import { JobService } from '../jobs/job.service.js';
import { ACTIONS, JOB_STATES, type JobRecord } from '../jobs/job-types.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { listJobsQuerySchema } from '../jobs/job-request.schema.js';
import { ERROR_SCHEMA, JOB_LIST_SCHEMA, JOB_SCHEMA } from '../openapi/openapi-schemas.js';
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
/** Submitting (POST /v1/jobs) is served outside Nest, by api/submit-route.ts. */
export class JobsController {
  constructor(private readonly jobs: JobService) {}

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
