import { Controller, UseFilters } from '@nestjs/common';
import { GrpcMethod } from '@nestjs/microservices';
import type { Metadata } from '@grpc/grpc-js';
import { SystemService, type SystemInfo } from '../engines/versions/system.service.js';
import { GrpcAuth } from './grpc-auth.js';
import { GrpcExceptionFilter } from './grpc-exception.filter.js';

@Controller()
@UseFilters(GrpcExceptionFilter)
export class SystemGrpcController {
  constructor(
    private readonly system: SystemService,
    private readonly auth: GrpcAuth,
  ) {}

  @GrpcMethod('SystemService', 'GetInfo')
  async getInfo(_request: unknown, metadata: Metadata): Promise<SystemInfo> {
    await this.auth.authorize(metadata, 'jobs:read');
    return this.system.info();
  }
}
