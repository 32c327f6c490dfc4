import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildctlArgs } from '../../src/engines/buildkit/build-command.js';
import { SecretUnreadableError } from '../../src/secrets/tenant-secrets.js';
import { resolveBuildSecrets } from '../../src/workers/build-secrets.js';
import { SecretMasker } from '../../src/workers/secret-masker.js';
import { JobFailure } from '../../src/jobs/job-failure.js';

const VALUE = 'tenant-value-9f2c1e';
const store = (values: Record<string, string>) => ({
  resolve: async (tenant: string, name: string) => {
    if (name === 'broken') throw new SecretUnreadableError(name);
    return values[`${tenant}/${name}`];
  },
});

describe('resolveBuildSecrets', () => {
  it("takes the tenant's secret first, then the server-configured one, and keeps values out of buildctl's args", async () => {
    const resolved = await resolveBuildSecrets(['npm', 'pip', 'npm'], 'team-a', {
      tenantSecrets: store({ 'team-a/npm': VALUE, 'team-b/pip': 'other' }),
      buildSecrets: { npm: { env: 'SERVER_NPM' }, pip: { file: '/etc/pip.conf' } },
    });
    assert.deepEqual(resolved.specs, [
      { id: 'npm', env: 'STEVEDORE_TENANT_SECRET_0' },
      { id: 'pip', file: '/etc/pip.conf' },
    ]);
    assert.deepEqual(resolved.env, { STEVEDORE_TENANT_SECRET_0: VALUE });
    const args = buildctlArgs('unix:///x.sock', {
      context: { dir: '/c' },
      dockerfileName: 'Dockerfile',
      buildArgs: {},
      platforms: [],
      tags: [],
      push: false,
      labels: {},
      noCache: false,
      secrets: resolved.specs,
      provenance: false,
      annotations: {},
      insecureRegistries: [],
      metadataFile: '/m.json',
      cacheSalt: 'stv-test',
    });
    assert.ok(args.includes('id=npm,env=STEVEDORE_TENANT_SECRET_0') && args.includes('id=pip,src=/etc/pip.conf'));
    assert.ok(!args.join(' ').includes(VALUE));
  });

  it('fails a secret that is gone, or that does not decrypt, naming it and nothing more', async () => {
    const deps = { tenantSecrets: store({}), buildSecrets: {} };
    await assert.rejects(
      resolveBuildSecrets(['gone'], 'team-a', deps),
      (err: JobFailure) => err.code === 'SECRET_NOT_FOUND' && /gone/.test(err.message),
    );
    await assert.rejects(
      resolveBuildSecrets(['broken'], 'team-a', deps),
      (err: JobFailure) => err.code === 'SECRET_UNREADABLE' && /broken/.test(err.message),
    );
    assert.deepEqual(await resolveBuildSecrets([], 'team-a', deps), { specs: [], env: {}, values: [] });
  });

  it('lists the values a build can read, for masking (tenant and server-env ones)', async () => {
    process.env.STV_TEST_SERVER_SECRET = 'server-value-1234';
    const resolved = await resolveBuildSecrets(['npm', 'srv', 'nofile'], 'team-a', {
      tenantSecrets: store({ 'team-a/npm': VALUE }),
      buildSecrets: { srv: { env: 'STV_TEST_SERVER_SECRET' }, nofile: { file: '/nonexistent/stv' } },
    });
    assert.deepEqual(resolved.values, [VALUE, 'server-value-1234']);
    delete process.env.STV_TEST_SERVER_SECRET;
  });
});

describe('SecretMasker', () => {
  it('masks every occurrence, longest value first, in nested data, and skips values under 4 characters', () => {
    const m = new SecretMasker();
    assert.equal(m.maskDeep({ a: 'hunter2hunter2' }).a, 'hunter2hunter2', 'nothing to mask yet');
    m.add(['hunter2', 'hunter2-long', 'abc', '  padded-secret \n', 'line-one\nline-two']);
    assert.equal(m.mask('x hunter2 y hunter2hunter2 z hunter2-long'), 'x *** y ****** z ***');
    assert.equal(m.mask('abc stays: short values are not masked'), 'abc stays: short values are not masked');
    assert.equal(m.mask('padded-secret line-two'), '*** ***');
    assert.deepEqual(m.maskDeep({ line: 'got hunter2', n: 3, logs: ['hunter2', { e: 'line-one' }], nil: null }), {
      line: 'got ***',
      n: 3,
      logs: ['***', { e: '***' }],
      nil: null,
    });
  });
});
