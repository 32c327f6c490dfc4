import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, describeConfig, loadConfig, CONFIG_VARIABLES } from '../../src/config/config.js';

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig({});
    assert.equal(c.http.port, 8080);
    assert.equal(c.grpc.port, 50051);
    assert.equal(c.stateDir, '/var/lib/stevedore');
    assert.equal(c.registryListen, '127.0.0.1:5000');
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.adminToken, undefined);
  });

  it('names every bad variable in one error, with the reason', () => {
    assert.throws(
      () =>
        loadConfig({
          STEVEDORE_HTTP_PORT: 'eighty',
          STEVEDORE_GRPC_PORT: '70000',
          REDIS_URL: 'localhost:6379',
          STEVEDORE_STATE_DIR: 'relative/dir',
          BUILDKIT_HOST: '--addr=x',
        }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        const names = err.problems.map((p) => p.variable).sort();
        assert.deepEqual(names, ['BUILDKIT_HOST', 'REDIS_URL', 'STEVEDORE_GRPC_PORT', 'STEVEDORE_HTTP_PORT', 'STEVEDORE_STATE_DIR']);
        assert.match(err.message, /STEVEDORE_GRPC_PORT: must be 1-65535 \(got "70000"\)/);
        assert.match(err.message, /REDIS_URL: must be a redis:\/\/ or rediss:\/\/ URL/);
        return true;
      },
    );
  });

  it('never echoes the token it rejects', () => {
    assert.throws(
      () => loadConfig({ STEVEDORE_TOKEN: 'short secret' }),
      (err: Error) => {
        assert.match(err.message, /STEVEDORE_TOKEN/);
        assert.doesNotMatch(err.message, /short secret/);
        return true;
      },
    );
  });

  it('accepts a full valid environment', () => {
    const c = loadConfig({
      STEVEDORE_TOKEN: 'a-long-enough-token-123',
      REDIS_URL: 'redis://r:6379/1',
      BUILDKIT_HOST: 'tcp://buildkitd:1234',
      STEVEDORE_REGISTRY_MIRROR: 'registry:5000',
      STEVEDORE_LOG_LEVEL: 'debug',
    });
    assert.equal(c.buildkitHost, 'tcp://buildkitd:1234');
    assert.equal(c.registryMirror, 'registry:5000');
    assert.equal(c.logLevel, 'debug');
  });

  it('documents every variable it reads', () => {
    const table = describeConfig();
    for (const name of Object.keys(CONFIG_VARIABLES)) assert.ok(table.includes(`\`${name}\``), name);
  });
});

describe('README', () => {
  it('carries the current configuration table', async () => {
    const { readFileSync } = await import('node:fs');
    const { PROJECT_DIR } = await import('../support/env.js');
    assert.ok(readFileSync(`${PROJECT_DIR}/README.md`, 'utf8').includes(describeConfig()), 'paste `stevedore config` into README.md');
  });
});
