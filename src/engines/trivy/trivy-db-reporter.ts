import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { TrivyClient } from './trivy-client.js';
import { describeDbState } from './trivy-db.js';

/**
 * Prints the Trivy DB's state once at start (every role: `serve`, `api`, `worker`):
 * present with its UpdatedAt and origin, or absent with how to provide one. Reading
 * metadata.json only; nothing is downloaded here (auto updates when a scan needs it).
 */
@Injectable()
export class TrivyDbReporter implements OnApplicationBootstrap {
  private readonly logger = new Logger('TrivyDb');

  constructor(private readonly trivy: TrivyClient) {}

  async onApplicationBootstrap(): Promise<void> {
    const state = await this.trivy.db.state();
    const line = describeDbState(state);
    if (state.present || state.mode === 'server') this.logger.log(line);
    else this.logger.warn(line);
  }
}
