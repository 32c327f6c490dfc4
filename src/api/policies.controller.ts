import { Body, Controller, Delete, Get, HttpCode, Param, Put, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { AppError } from '../errors/app-error.js';
import { validate } from '../errors/validation.js';
import { ERROR_SCHEMA, openApiSchema } from '../openapi/openapi-schemas.js';
import { namedPolicySchema, POLICY_NAME_PATTERN, POLICY_NAME_RULE } from '../policies/policy.schema.js';
import { PolicyStore, type StoredPolicy } from '../policies/policy-store.js';

const RULES_SCHEMA = openApiSchema(namedPolicySchema);
const POLICY_SCHEMA = {
  type: 'object',
  required: ['name', 'version', 'created_at', 'updated_at', 'rules'],
  properties: {
    name: { type: 'string', example: 'prod' },
    version: { type: 'integer', description: '1 when created, one more on each PUT.' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
    rules: RULES_SCHEMA,
  },
};
const NAME_PARAM = { name: 'name', description: `Policy name: ${POLICY_NAME_RULE}.`, example: 'prod' };

function checkName(name: string): string {
  if (POLICY_NAME_PATTERN.test(name)) return name;
  throw new AppError('invalid', 'VALIDATION_FAILED', `invalid path: name: ${POLICY_NAME_RULE}`, {
    fields: [{ path: 'name', message: POLICY_NAME_RULE }],
  });
}

/** Another tenant's policy answers exactly like a missing one. */
const notFound = (name: string) => new AppError('not_found', 'NOT_FOUND', `no policy named ${name}`);

/**
 * Named policies of the caller's tenant: the scan gate as a resource. Jobs name one
 * (`policy: "prod"` on a scan, `scan.policy` on a build); admission records the version
 * and rules it used. Writing needs jobs:write: whoever may submit a job may already give
 * it any inline policy, so a stored one grants nothing more.
 */
@ApiTags('policies')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('v1/policies')
export class PoliciesController {
  constructor(private readonly policies: PolicyStore) {}

  @Put(':name')
  @RequireScope('jobs:write')
  @ApiOperation({ summary: 'Create or replace a named policy of your tenant; each PUT bumps its version.' })
  @ApiParam(NAME_PARAM)
  @ApiBody({ schema: RULES_SCHEMA })
  @ApiResponse({ status: 201, description: 'Created.', schema: POLICY_SCHEMA })
  @ApiResponse({ status: 200, description: 'Replaced.', schema: POLICY_SCHEMA })
  @ApiResponse({ status: 400, description: 'Invalid name or body (error.details.fields lists each).', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:write.', schema: ERROR_SCHEMA })
  async put(
    @Param('name') name: string,
    @Body() body: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ): Promise<StoredPolicy> {
    checkName(name);
    const rules = validate(namedPolicySchema, body ?? {}, 'body');
    const { created, policy } = await this.policies.put(principal.tenant, name, rules);
    void reply.status(created ? 201 : 200);
    return policy;
  }

  @Get()
  @RequireScope('jobs:read')
  @ApiOperation({ summary: "Your tenant's named policies, by name." })
  @ApiResponse({
    status: 200,
    schema: { type: 'object', required: ['items'], properties: { items: { type: 'array', items: POLICY_SCHEMA } } },
  })
  @ApiResponse({ status: 401, description: 'Missing or wrong token.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 403, description: 'The key lacks jobs:read.', schema: ERROR_SCHEMA })
  async list(@CurrentPrincipal() principal: Principal): Promise<{ items: StoredPolicy[] }> {
    return { items: await this.policies.list(principal.tenant) };
  }

  @Get(':name')
  @RequireScope('jobs:read')
  @ApiOperation({ summary: 'A named policy: its rules and version.' })
  @ApiParam(NAME_PARAM)
  @ApiResponse({ status: 200, schema: POLICY_SCHEMA })
  @ApiResponse({ status: 400, description: 'Invalid name.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such policy.', schema: ERROR_SCHEMA })
  async get(@Param('name') name: string, @CurrentPrincipal() principal: Principal): Promise<StoredPolicy> {
    const policy = await this.policies.get(principal.tenant, checkName(name));
    if (!policy) throw notFound(name);
    return policy;
  }

  @Delete(':name')
  @HttpCode(204)
  @RequireScope('jobs:write')
  @ApiOperation({ summary: 'Delete a named policy; jobs naming it are refused from then on (admitted ones keep their snapshot).' })
  @ApiParam(NAME_PARAM)
  @ApiResponse({ status: 204, description: 'Deleted.' })
  @ApiResponse({ status: 400, description: 'Invalid name.', schema: ERROR_SCHEMA })
  @ApiResponse({ status: 404, description: 'Your tenant has no such policy.', schema: ERROR_SCHEMA })
  async remove(@Param('name') name: string, @CurrentPrincipal() principal: Principal): Promise<void> {
    if (!(await this.policies.delete(principal.tenant, checkName(name)))) throw notFound(name);
  }
}
