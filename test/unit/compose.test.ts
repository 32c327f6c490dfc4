import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { PROJECT_DIR } from '../support/env.js';

const compose = parse(readFileSync(join(PROJECT_DIR, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown>; configs?: { source: string }[]; volumes?: string[] }>;
  configs?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
};

describe('docker-compose.yml', () => {
  it('describes the production topology', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'buildkitd', 'redis', 'registry', 'worker']);
    for (const [name, service] of Object.entries(compose.services)) assert.ok(service.image, `${name} has an image`);
    assert.deepEqual(compose.services.api!.command, ['stevedore', 'api']);
    assert.deepEqual(compose.services.worker!.command, ['stevedore', 'worker']);
  });

  it('references only services, configs and volumes it defines', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const dep of Object.keys(service.depends_on ?? {})) assert.ok(compose.services[dep], `${name} depends on ${dep}`);
      for (const c of service.configs ?? []) assert.ok(compose.configs?.[c.source], `${name} uses config ${c.source}`);
      for (const v of service.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (!source.startsWith('.') && !source.startsWith('/')) assert.ok(source in (compose.volumes ?? {}), `${name} uses volume ${source}`);
      }
    }
  });

  it('configures the stevedore roles only with variables the service reads', () => {
    for (const role of ['api', 'worker']) {
      for (const variable of Object.keys(compose.services[role]!.environment ?? {})) assert.ok(variable in CONFIG_VARIABLES, `${role}: ${variable}`);
    }
  });
});
