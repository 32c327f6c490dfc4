import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../../config/config.module.js';
import type { AppConfig } from '../../config/config.js';
import { ChildProcessRunner } from '../process-runner.js';
import { readToolVersions, type ToolVersions } from './tool-versions.js';
import { STEVEDORE_VERSION } from '../../version.js';

export interface SystemInfo {
  version: string;
  node: string;
  tools: ToolVersions;
}

/** What this stevedore is made of; shared by REST and gRPC. */
@Injectable()
export class SystemService {
  private tools?: Promise<ToolVersions>;
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  async info(): Promise<SystemInfo> {
    // Tool versions do not change while the process lives: ask once.
    this.tools ??= readToolVersions(new ChildProcessRunner(), this.config.tools);
    return { version: STEVEDORE_VERSION, node: process.version, tools: await this.tools };
  }
}
