import { Body, Controller, Get, Headers, HttpCode, Inject, Param, Post, Query, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiHeader, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { JobService } from '../jobs/job.service.js';
import { ACTIONS, JOB_STATES, type JobRecord, type JobRequest } from '../jobs/job-types.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { assertBuildSecretsExist, assertBuildSourcesAllowed, checkBuildPolicy } from '../admission/build-policy.js';
import { checkJobRepositories } from '../admission/repository-policy.js';
import { checkJobRegistries } from '../admission/registry-policy.js';
import { TenantSecrets } from '../secrets/tenant-secrets.js';
import { toContextApiError } from './contexts.controller.js';
import { APP_CONFIG } from '../config/config.module.js';
import type { AppConfig } from '../config/config.js';
import { ContextError, ContextStore } from '../contexts/context-store.js';
import { ContextOwners } from '../contexts/context-owners.js';
import { assertCallbackAllowed } from '../webhooks/callback-guard.js';
import { SigningKeys } from '../engines/cosign/signing-keys.js';
import { BUILD_LIMITS } from '../jobs/build-request.schema.js';
import { actionSchema, idempotencyKeySchema, jobRequestSchema, listJobsQuerySchema } from '../jobs/job-request.schema.js';
import { ERROR_SCHEMA, INSPECT_REQUEST_EXAMPLE, JOB_LIST_SCHEMA, JOB_REQUEST_SCHEMA, JOB_SCHEMA, SUBMITTED_SCHEMA } from '../openapi/openapi-schemas.js';
import { ApiError } from '../errors/api-error.js';
import { mapJobErrors } from '../errors/job-errors.js';
import { validate } from '../errors/validation.js';

const errors = (...codes: [number, string][]) => codes.map(([status, description]) => ApiResponse({ status, description, schema: ERROR_SCHEMA }));
const applyAll = (decorators: MethodDecorator[]): MethodDecorator => (target, key, descriptor) => {
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
    private readonly contexts: ContextStore,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly keys: SigningKeys,
    private readonly owners: ContextOwners,
    private readonly secrets: TenantSecrets,
  ) {}

  @Post()
  @RequireScope('jobs:write')
  @ApiOperation({ summary: 'Submit a job. Answers 202 at once; follow it with GET /v1/jobs/{id}/events.' })
  @ApiBody({ schema: { ...JOB_REQUEST_SCHEMA, example: INSPECT_REQUEST_EXAMPLE } })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'Same key + same body returns the original job (200); same key + different body is 409.' })
  @ApiResponse({ status: 202, description: 'Queued.', schema: SUBMITTED_SCHEMA })
  @ApiResponse({ status: 200, description: 'An earlier job with the same Idempotency-Key and body.', schema: SUBMITTED_SCHEMA })
  @applyAll(errors([400, 'Invalid body (error.details.fields lists each field path), or REGISTRY_FORBIDDEN (an image on a loopback, private, link-local or metadata address that is not a configured registry; details.path names the field).'], [401, 'Missing or wrong token.'], [403, 'FORBIDDEN (missing scope) or REPOSITORY_FORBIDDEN (an image outside the API key’s repositories; details.path names the field).'], [409, 'Idempotency-Key reused with a different body.'], [413, 'Body over the limit.'], [415, 'Not JSON.']))
  async submit(@Body() body: unknown, @Headers('idempotency-key') idempotencyKey: string | undefined, @Res({ passthrough: true }) reply: FastifyReply, @CurrentPrincipal() principal: Principal) {
    const request = parseJobRequest(body);
    await checkSubmittable(request, { config: this.config, contexts: this.contexts, keys: this.keys, owners: this.owners, tenant: principal.tenant, principal, secrets: this.secrets });
    const key = idempotencyKey === undefined ? undefined : validate(idempotencyKeySchema, idempotencyKey, 'header');
    const { job, created } = await mapJobErrors(this.jobs.submit(request, principal.tenant, { idempotencyKey: key, requestId: String(reply.request.id) }));
    void reply.status(created ? 202 : 200).header('location', `/v1/jobs/${job.id}`);
    return submittedView(job);
  }

  @Get()
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "List the caller's jobs (its tenant's), newest first, with cursor pagination." })
  @ApiQuery({ name: 'state', required: false, enum: [...JOB_STATES] })
  @ApiQuery({ name: 'action', required: false, enum: [...ACTIONS] })
  @ApiQuery({ name: 'limit', required: false, schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } })
  @ApiQuery({ name: 'cursor', required: false, description: 'next_cursor of the previous page', schema: { type: 'string', maxLength: 200 } })
  @ApiResponse({ status: 200, schema: JOB_LIST_SCHEMA })
  @applyAll(errors([400, 'Invalid query.'], [401, 'Missing or wrong token.']))
  list(@Query() query: unknown, @CurrentPrincipal() principal: Principal) {
    const filter = validate(listJobsQuerySchema, query, 'query');
    return mapJobErrors(this.jobs.list({ ...filter, tenant: principal.tenant, state: filter.state as JobRecord['state'] | undefined }));
  }

  @Get(':id')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: 'A job record.' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 200, schema: JOB_SCHEMA })
  @applyAll(errors([401, 'Missing or wrong token.'], [404, 'No such job.']))
  get(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return mapJobErrors(this.jobs.get(id, principal.tenant));
  }

  @Post(':id/cancel')
  @RequireScope('jobs:write')
  @HttpCode(202)
  @ApiOperation({ summary: 'Cancel a job: a queued one at once, a running one by aborting its work.' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({ status: 202, schema: JOB_SCHEMA })
  @applyAll(errors([401, 'Missing or wrong token.'], [404, 'No such job.'], [409, 'The job already finished.']))
  cancel(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    return mapJobErrors(this.jobs.cancel(id, principal.tenant));
  }
}

/** Server policy and references to stored things (an uploaded context), before queueing. */
export interface SubmitChecks {
  config: AppConfig;
  contexts: ContextStore;
  owners: ContextOwners;
  keys?: SigningKeys;
  tenant: string;
  /** Whose repositories bound the images the job reads and writes (docs/tenancy.md). */
  principal: Pick<Principal, 'tenant' | 'root' | 'repositories'>;
  /** The tenant's build secrets; without it only server-configured ones are accepted. */
  secrets?: Pick<TenantSecrets, 'has'>;
}

export async function checkSubmittable(request: JobRequest, { config, contexts, owners, keys, tenant, principal, secrets }: SubmitChecks): Promise<void> {
  checkBuildPolicy(request, config);
  checkJobRepositories(request, principal, config);
  await checkJobRegistries(request, config);
  await assertBuildSecretsExist(request, tenant, config, secrets);
  await assertBuildSourcesAllowed(request, config);
  if (request.callback_url) await assertCallbackAllowed(request.callback_url, config.webhooks.allowedHosts);
  const signing = request.action === 'sign' || request.action === 'verify' ? { key: request.key, path: 'key' } : request.action === 'build' && request.sign ? { key: typeof request.sign === 'object' ? request.sign.key : undefined, path: 'sign.key' } : undefined;
  if (signing && keys) {
    const problem = signing.key ? (keys.has(signing.key) ? undefined : `no signing key named ${signing.key}`) : keys.keys.length ? undefined : 'no signing keys are configured on this server';
    if (problem) throw new ApiError(400, 'VALIDATION_FAILED', `invalid body: ${signing.path}: ${problem}`, { fields: [{ path: signing.path, message: problem }] });
  }
  if ((request.action === 'build' || request.action === 'optimize') && request.context && 'upload' in request.context) {
    try {
      // Another tenant's upload answers exactly like a missing one.
      if (!(await owners.owns(tenant, request.context.upload))) throw new ContextError('CONTEXT_NOT_FOUND', `no build context ${request.context.upload} (never uploaded, or unused for longer than ${config.contextTtlSeconds} s)`);
      await contexts.path(request.context.upload);
    } catch (err) {
      const mapped = toContextApiError(err);
      if (mapped instanceof ApiError) throw new ApiError(400, mapped.code, mapped.message, { fields: [{ path: 'context.upload', message: mapped.message }] });
      throw mapped;
    }
  }
}

/** Action first (an unknown action is named as such, not as a schema mismatch), then its schema. */
export function parseJobRequest(body: unknown): JobRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'VALIDATION_FAILED', 'invalid body: must be a JSON object', { fields: [{ path: 'body', message: 'must be a JSON object' }] });
  }
  validate(actionSchema, { action: (body as { action?: unknown }).action }, 'body');
  refuseHugeMaps(body as Record<string, unknown>);
  return validate(jobRequestSchema, body, 'body') as JobRequest;
}

/**
 * The schema bounds build_args and labels too, but only after checking every entry: a
 * 10 MB body of 400 000 build args kept the event loop busy for about a second. Counted
 * first, such a body is refused at once with the same answer.
 */
function refuseHugeMaps(body: Record<string, unknown>): void {
  for (const [field, max] of [['build_args', BUILD_LIMITS.buildArgs], ['labels', BUILD_LIMITS.labels]] as const) {
    const value = body[field];
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
    let n = 0;
    for (const _ in value) if (++n > max) break;
    if (n > max) throw new ApiError(400, 'VALIDATION_FAILED', `invalid body: ${field}: at most ${max} entries`, { fields: [{ path: field, message: `at most ${max} entries` }] });
  }
}
