import { Controller, Get, Param, Res, UseGuards } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyReply } from 'fastify';
import { ArtifactStore, artifactMediaType } from '../jobs/artifact-store.js';
import { JobService } from '../jobs/job.service.js';
import { AuthGuard } from '../auth/auth.guard.js';
import { CurrentPrincipal, RequireScope, type Principal } from '../auth/principal.js';
import { ERROR_SCHEMA } from '../openapi/openapi-schemas.js';
import { AppError } from '../errors/app-error.js';

@ApiTags('jobs')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@RequireScope('jobs:read')
@Controller('v1/jobs')
export class ArtifactsController {
  constructor(
    private readonly jobs: JobService,
    private readonly artifacts: ArtifactStore,
  ) {}

  @Get(':id/artifacts')
  @ApiOperation({
    summary:
      "A job's artifacts: for a scan, Trivy's JSON report (trivy-report.json), " +
      'SARIF 2.1.0 (report.sarif.json) and a CycloneDX SBOM (sbom.cdx.json). A scan of several platforms ' +
      'has them per platform, named after it: trivy-report.linux-arm64.json, report.sarif.linux-arm64.json, ' +
      "sbom.cdx.linux-arm64.json (the result lists each platform's names under platforms[].artifacts).",
  })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiResponse({
    status: 200,
    schema: {
      type: 'object',
      properties: {
        items: {
          type: 'array',
          items: {
            type: 'object',
            properties: { name: { type: 'string' }, media_type: { type: 'string' }, size_bytes: { type: 'integer' } },
          },
        },
      },
    },
  })
  @ApiResponse({ status: 404, description: 'No such job.', schema: ERROR_SCHEMA })
  async list(@Param('id') id: string, @CurrentPrincipal() principal: Principal) {
    await this.jobs.get(id, principal.tenant);
    return { items: await this.artifacts.list(id) };
  }

  @Get(':id/artifacts/:name')
  @ApiOperation({ summary: 'One artifact, with its media type.' })
  @ApiParam({ name: 'id', format: 'uuid' })
  @ApiParam({ name: 'name', example: 'report.sarif.json' })
  @ApiResponse({ status: 404, description: 'No such job or artifact.', schema: ERROR_SCHEMA })
  async get(
    @Param('id') id: string,
    @Param('name') name: string,
    @Res() reply: FastifyReply,
    @CurrentPrincipal() principal: Principal,
  ): Promise<void> {
    await this.jobs.get(id, principal.tenant);
    const bytes = await this.artifacts.read(id, name);
    if (!bytes) throw new AppError('not_found', 'NOT_FOUND', `job ${id} has no artifact ${name}`);
    await reply.header('content-type', artifactMediaType(name)).header('content-disposition', `attachment; filename="${name}"`).send(bytes);
  }
}
