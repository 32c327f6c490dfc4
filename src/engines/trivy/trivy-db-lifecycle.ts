import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { TrivyClient } from './trivy-client.js';
import type { TrivyDbState } from './trivy-db.js';

/**
 * The Trivy DB around the process's life. At start (every role: `serve`, `api`,
 * `worker`) it prints the DB's state: present with its UpdatedAt and origin, or absent
 * with how to provide one; reading metadata.json only, nothing is downloaded here (auto
 * updates when a scan needs it). At shutdown it stops a download still running.
 */
@Injectable()
export class TrivyDbLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('TrivyDb');

  constructor(private readonly trivy: TrivyClient) {}

  async onApplicationBootstrap(): Promise<void> {
    const state = await this.trivy.db.state();
    const line = describeDbState(state);
    if (state.present || state.mode === 'server') this.logger.log(line);
    else this.logger.warn(line);
  }

  onApplicationShutdown(): void {
    this.trivy.db.close();
  }
}

/** One line for the start-up log. */
export function describeDbState(s: TrivyDbState): string {
  if (s.mode === 'server') return 'Trivy DB: scans run on the Trivy server (TRIVY_SERVER_URL), which keeps its own DB';
  const updates =
    s.mode === 'auto'
      ? `updates: auto from ${s.repositories.join(', ')} when reachable`
      : s.mode === 'true'
        ? `updates: by Trivy on every scan from ${s.repositories.join(', ')}`
        : 'updates: off';
  if (!s.present) return `Trivy DB: absent${s.problem ? ` (${s.problem})` : ''}; ${updates}. ${s.hint ?? ''}`.trim();
  const origin = { downloaded: 'auto-updated', uploaded: 'loaded through PUT /v1/system/trivy-db', found: 'found in the cache dir' }[
    s.source!
  ];
  return `Trivy DB: present in ${s.path}, UpdatedAt ${s.updated_at}, ${origin}; ${updates}`;
}
