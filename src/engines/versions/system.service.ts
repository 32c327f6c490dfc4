import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG } from '../../config/config.module.js';
import type { AppConfig } from '../../config/config.js';
import { ChildProcessRunner } from '../process-runner.js';
import { TrivyClient } from '../trivy/trivy-client.js';
import type { TrivyDbState } from '../trivy/trivy-db.js';
import { readToolVersions, type ToolVersions } from './tool-versions.js';
import { STEVEDORE_VERSION } from '../../version.js';

export interface SystemInfo {
  version: string;
  node: string;
  tools: ToolVersions;
  /** The Trivy DB of this process's cache dir (in a split deployment: the api's view; workers share it or keep their own). */
  trivy_db: TrivyDbState;
}

/** What this stevedore is made of; shared by REST and gRPC. */
@Injectable()
export class SystemService {
  private tools?: Promise<ToolVersions>;
  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly trivy: TrivyClient,
  ) {}

  async info(): Promise<SystemInfo> {
    // Tool versions do not change while the process lives: ask once. The DB does: read each time.
    this.tools ??= readToolVersions(new ChildProcessRunner(), this.config.tools);
    const [tools, trivyDb] = await Promise.all([this.tools, this.trivy.db.state()]);
    return { version: STEVEDORE_VERSION, node: process.version, tools, trivy_db: trivyDb };
  }
}
