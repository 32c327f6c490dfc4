import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { assertRedisAuthenticated, ConfigError, loadConfig, redactRedisUrl, redisUrlHasPassword } from '../../src/config/config.js';
import { BuildkitClient } from '../../src/engines/buildkit/buildkit-client.js';
import { buildctlWithTls } from '../../src/engines/buildctl-tls.js';
import type { ProcessRunner, RunResult } from '../../src/engines/process-runner.js';
import { DockerConfigCredentials, dockerConfigDir } from '../../src/engines/registry/docker-config.js';
import { RegistryResolver } from '../../src/engines/registry/registry-resolver.js';
import { RegistryGuard } from '../../src/engines/registry/registry-guard.js';
import { PROJECT_DIR } from '../support/env.js';
import { dockerConfigWith, ensureStateSecret, htpasswdLine, redisConfig, REGISTRY_USER } from '../../src/runtime/credentials.js';
import { tempDir } from '../support/temp-dir.js';

describe('Redis authentication at start', () => {
  it('tells a URL with a password from one without, from the URL alone', () => {
    assert.equal(redisUrlHasPassword('redis://:s3cret-password@redis:6379/0'), true);
    assert.equal(redisUrlHasPassword('rediss://stevedore:s3cret@redis.example:6380/0'), true);
    assert.equal(redisUrlHasPassword('redis://redis:6379/0'), false);
    assert.equal(redisUrlHasPassword('redis://stevedore@redis:6379/0'), false, 'a user without a password');
    assert.equal(redisUrlHasPassword('redis://:@redis:6379/0'), false, 'an empty password');
  });

  it('refuses a REDIS_URL without a password, naming the way out, unless allowed', () => {
    const config = loadConfig({ REDIS_URL: 'redis://redis:6379/0' });
    assert.equal(config.allowUnauthenticatedRedis, false);
    assert.throws(
      () => assertRedisAuthenticated(config),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.deepEqual(
          err.problems.map((p) => p.variable),
          ['REDIS_URL'],
        );
        assert.match(err.message, /REDIS_URL: has no password/);
        assert.match(err.message, /redis:\/\/:PASSWORD@host:6379\/0/);
        assert.match(err.message, /STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS=true/);
        return true;
      },
    );
    assert.doesNotThrow(() =>
      assertRedisAuthenticated(loadConfig({ REDIS_URL: 'redis://redis:6379/0', STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: 'true' })),
    );
    assert.doesNotThrow(() => assertRedisAuthenticated(loadConfig({ REDIS_URL: 'redis://:pw-0123456789@redis:6379/0' })));
    assert.doesNotThrow(() => assertRedisAuthenticated(loadConfig({})), 'no REDIS_URL: serve embeds one with a password');
    assert.throws(
      () => loadConfig({ STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: 'yes' }),
      /STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS: must be true or false/,
    );
  });

  it('never puts a Redis password in a message or serve.json', () => {
    assert.equal(redactRedisUrl('redis://:hunter2-hunter2@127.0.0.1:6379/0'), 'redis://:***@127.0.0.1:6379/0');
    assert.equal(redactRedisUrl('rediss://user:hunter2@redis:6380/1'), 'rediss://user:***@redis:6380/1');
    assert.equal(redactRedisUrl('redis://127.0.0.1:6379/0'), 'redis://127.0.0.1:6379/0');
    // A URL the validation refuses is echoed in the error: without its password.
    assert.throws(
      () => loadConfig({ REDIS_URL: 'redis://:hunter2 hunter2@host:6379/0' }),
      (err: Error) => {
        assert.match(err.message, /REDIS_URL/);
        assert.doesNotMatch(err.message, /hunter2/);
        return true;
      },
    );
  });
});

describe('stevedore api / worker / serve with an external REDIS_URL', () => {
  const run = (role: string, env: Record<string, string>) =>
    spawnSync(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), role], {
      env: {
        PATH: process.env.PATH,
        STEVEDORE_STATE_DIR: tempDir('stv-role-'),
        STEVEDORE_TOKEN: 'a-long-enough-token-123',
        STEVEDORE_SECRETS_KEY: Buffer.alloc(32, 1).toString('base64'),
        BUILDKIT_HOST: 'tcp://127.0.0.1:1',
        ...env,
      },
      encoding: 'utf8',
      timeout: 30_000,
    });

  for (const role of ['api', 'worker', 'serve']) {
    it(`${role} refuses at start a Redis URL without a password, and never prints one`, () => {
      const r = run(role, { REDIS_URL: 'redis://127.0.0.1:1/0' });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /REDIS_URL: has no password \(got "redis:\/\/127\.0\.0\.1:1\/0"\)/);
      assert.match(r.stderr, /STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS=true/);
      const malformed = run(role, { REDIS_URL: 'redis://:hunter2 hunter2@127.0.0.1:1/0' });
      assert.equal(malformed.status, 2);
      assert.doesNotMatch(malformed.stderr + malformed.stdout, /hunter2/);
    });
  }
});

describe('serve-generated credentials', () => {
  it('makes a secret once (0600) and reuses it', () => {
    const dir = tempDir('stv-cred-');
    const first = ensureStateSecret(dir, 'redis-password');
    assert.equal(first.file, join(dir, 'redis-password'));
    assert.equal(statSync(first.file).mode & 0o777, 0o600);
    assert.match(first.value, /^[A-Za-z0-9_-]{32}$/);
    assert.equal(ensureStateSecret(dir, 'redis-password').value, first.value);
    assert.notEqual(ensureStateSecret(dir, 'registry-password').value, first.value);
    writeFileSync(first.file, 'short\n');
    assert.notEqual(ensureStateSecret(dir, 'redis-password').value, 'short', 'an unusable file is replaced');
  });

  it('writes the Redis password into a config file, not an argument', () => {
    assert.equal(
      redisConfig('abcdefghijklmnop-_'),
      '# Written by stevedore serve on every start from <state dir>/redis-password.\nrequirepass abcdefghijklmnop-_\n',
    );
    assert.throws(() => redisConfig('with space and "quotes"'), /URL-safe/);
  });

  it('makes a bcrypt htpasswd line for the registry user', () => {
    const line = htpasswdLine(REGISTRY_USER, 'registry-password-123');
    const [user, hash] = line.trim().split(':') as [string, string];
    assert.equal(user, 'stevedore');
    assert.match(hash, /^\$2[aby]\$10\$/);
    assert.ok(bcrypt.compareSync('registry-password-123', hash));
    assert.ok(!bcrypt.compareSync('other', hash));
  });

  it('adds the embedded registry to the operator’s config.json, keeping the rest', () => {
    const operator = JSON.stringify({
      auths: { 'registry.example': { auth: Buffer.from('u:p').toString('base64') }, '127.0.0.1:5000': { auth: 'c3RhbGU6c3RhbGU=' } },
      credHelpers: { 'ecr.example': 'ecr-login' },
    });
    const merged = JSON.parse(dockerConfigWith('127.0.0.1:5000', { username: 'stevedore', password: 'pw' }, operator));
    assert.deepEqual(merged.credHelpers, { 'ecr.example': 'ecr-login' });
    const creds = new DockerConfigCredentials(JSON.stringify(merged));
    assert.deepEqual(creds.lookup('127.0.0.1:5000'), { username: 'stevedore', password: 'pw' });
    assert.deepEqual(creds.lookup('registry.example'), { username: 'u', password: 'p' });
    assert.deepEqual(
      new DockerConfigCredentials(dockerConfigWith('127.0.0.1:5000', { username: 'stevedore', password: 'pw' })).lookup('127.0.0.1:5000'),
      { username: 'stevedore', password: 'pw' },
    );
  });

  it('gives tools DOCKER_CONFIG only for a file named config.json', () => {
    assert.equal(dockerConfigDir('/var/lib/stevedore/docker/config.json'), '/var/lib/stevedore/docker');
    assert.equal(dockerConfigDir('/etc/stevedore/auth.json'), undefined);
    assert.equal(dockerConfigDir(undefined), undefined);
  });
});

describe('RegistryResolver credentials', () => {
  const credentials = new DockerConfigCredentials(
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hubpass').toString('base64') },
        '127.0.0.1:5000': { auth: Buffer.from('stevedore:mirrorpass').toString('base64') },
      },
    }),
  );
  const creds = (resolver: RegistryResolver, registry: string) =>
    (resolver.clientFor(registry).session as unknown as { options: { credentials?: unknown } }).options.credentials;

  it('sends Docker Hub references to the mirror with the mirror’s credentials, never Docker Hub’s', () => {
    const resolver = new RegistryResolver({ dockerHubMirror: '127.0.0.1:5000', credentials, guard: new RegistryGuard(['127.0.0.1:5000']) });
    assert.equal(resolver.clientFor('docker.io').host, '127.0.0.1:5000');
    assert.deepEqual(creds(resolver, 'docker.io'), { username: 'stevedore', password: 'mirrorpass' });
  });

  it('uses Docker Hub’s credentials for Docker Hub itself', () => {
    const resolver = new RegistryResolver({ credentials, guard: new RegistryGuard([]) });
    assert.equal(resolver.clientFor('docker.io').host, 'registry-1.docker.io');
    assert.deepEqual(creds(resolver, 'docker.io'), { username: 'hubuser', password: 'hubpass' });
  });
});

describe('buildctl with mutual TLS', () => {
  it('puts --tlsdir before every buildctl command when STEVEDORE_BUILDKIT_TLS_DIR is set', async () => {
    const calls: { command: string; args: readonly string[] }[] = [];
    const runner: ProcessRunner = {
      run: async (command, args) => (calls.push({ command, args }), { stdout: '[]', stderr: '' }) as unknown as RunResult,
    };
    await new BuildkitClient(buildctlWithTls(runner, '/etc/stevedore/buildkit-tls'), 'buildctl', 'tcp://buildkitd:1234').workers();
    assert.deepEqual(calls[0]!.args.slice(0, 4), ['--tlsdir', '/etc/stevedore/buildkit-tls', '--addr', 'tcp://buildkitd:1234']);
    assert.equal(buildctlWithTls(runner, undefined), runner);
    assert.equal(loadConfig({ STEVEDORE_BUILDKIT_TLS_DIR: '/etc/stevedore/buildkit-tls' }).buildkitTlsDir, '/etc/stevedore/buildkit-tls');
    assert.throws(() => loadConfig({ STEVEDORE_BUILDKIT_TLS_DIR: 'relative' }), /STEVEDORE_BUILDKIT_TLS_DIR: must be an absolute path/);
  });
});
