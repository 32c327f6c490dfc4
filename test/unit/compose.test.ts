import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { CONFIG_VARIABLES } from '../../src/config/config.js';
import { PROJECT_DIR } from '../support/env.js';

const compose = parse(readFileSync(join(PROJECT_DIR, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<
    string,
    {
      image?: string;
      build?: { context: string; target: string; args?: Record<string, string> };
      entrypoint?: string[];
      command?: string[];
      environment?: Record<string, string>;
      depends_on?: Record<string, unknown>;
      configs?: { source: string }[];
      volumes?: string[];
      privileged?: boolean;
      container_name?: string;
      ports?: string[];
      networks?: string[];
      healthcheck?: { test: string[] };
    }
  >;
  configs?: Record<string, unknown>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, unknown>;
};

describe('docker-compose.yml', () => {
  it('describes the production topology', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'buildkitd', 'redis', 'registry', 'trivy', 'worker']);
    for (const [name, service] of Object.entries(compose.services)) assert.ok(service.image, `${name} has an image`);
    // The image's entrypoint is `node bin/stevedore.js`: the command is the role.
    assert.deepEqual(compose.services.api!.command, ['api']);
    assert.deepEqual(compose.services.worker!.command, ['worker']);
  });

  it('builds api and worker from the Dockerfile, its base images overridable by environment', () => {
    const dockerfile = readFileSync(join(PROJECT_DIR, 'Dockerfile'), 'utf8');
    const args = [...dockerfile.matchAll(/^ARG (\w+_IMAGE)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!] as const);
    assert.ok(args.length >= 4, 'the Dockerfile declares its base images as build arguments');
    for (const role of ['api', 'worker']) {
      const build = compose.services[role]!.build!;
      assert.equal(build.context, '.');
      assert.equal(build.target, role);
      assert.ok(new RegExp(`^FROM .* AS ${role}$`, 'm').test(dockerfile), `the Dockerfile has a ${role} target`);
      // Same names as the Dockerfile's, each defaulting to the Dockerfile's own default.
      assert.deepEqual(Object.keys(build.args ?? {}).sort(), args.map(([name]) => name).sort());
      for (const [name, value] of args) assert.equal(build.args![name], `\${STEVEDORE_BUILD_${name}:-${value}}`, `${role}: ${name}`);
    }
  });

  it('makes every image overridable and keeps buildkitd privileged, Redis on AOF', () => {
    for (const name of ['buildkitd', 'redis', 'registry', 'trivy', 'api', 'worker']) {
      assert.match(compose.services[name]!.image!, /^\$\{STEVEDORE_[A-Z]+_IMAGE:-[^}]+\}$/, `${name}: ${compose.services[name]!.image}`);
    }
    assert.equal(compose.services.buildkitd!.privileged, true);
    const redis = compose.services.redis!.command!;
    assert.equal(redis[0], 'redis-server');
    assert.equal(redis[redis.indexOf('--appendonly') + 1], 'yes');
    // Scalable: no fixed container name and no host port on the workers.
    assert.equal(compose.services.worker!.container_name, undefined);
    assert.equal(compose.services.worker!.ports, undefined);
  });

  it('points the workers at the Trivy server, with its token', () => {
    const worker = compose.services.worker!.environment!;
    const trivy = compose.services.trivy!;
    const listen = trivy.command![trivy.command!.indexOf('--listen') + 1]!;
    assert.deepEqual(trivy.command!.slice(0, 1), ['server']);
    assert.equal(worker.TRIVY_SERVER_URL, `http://trivy:${listen.split(':').pop()}`);
    assert.match(worker.TRIVY_TOKEN!, /^\$\{TRIVY_TOKEN:\?/);
    assert.equal(trivy.environment!.TRIVY_TOKEN, worker.TRIVY_TOKEN);
    assert.ok(Object.keys(compose.services.worker!.depends_on ?? {}).includes('trivy'));
  });

  it('has override files that only name services the base file defines', () => {
    for (const file of ['offline.yml', 'signing.yml', 'unprivileged-buildkitd.yml']) {
      const override = parse(readFileSync(join(PROJECT_DIR, 'deploy', 'compose', file), 'utf8')) as {
        services: Record<string, { environment?: Record<string, string> }>;
      };
      for (const [name, service] of Object.entries(override.services)) {
        assert.ok(compose.services[name], `${file}: ${name}`);
        for (const variable of Object.keys(service.environment ?? {}))
          assert.ok(variable in CONFIG_VARIABLES, `${file}: ${name}: ${variable}`);
      }
    }
  });

  it('references only services, configs and volumes it defines', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      for (const dep of Object.keys(service.depends_on ?? {})) assert.ok(compose.services[dep], `${name} depends on ${dep}`);
      for (const c of service.configs ?? []) assert.ok(compose.configs?.[c.source], `${name} uses config ${c.source}`);
      for (const v of service.volumes ?? []) {
        const source = v.split(':')[0]!;
        // Host paths: relative, absolute or from a variable (${STEVEDORE_BUILDKIT_CERTS:?…}/client).
        if (!source.startsWith('.') && !source.startsWith('/') && !source.startsWith('$'))
          assert.ok(source in (compose.volumes ?? {}), `${name} uses volume ${source}`);
      }
    }
  });

  it('gives Redis a password that is on no command line, and both roles a URL with it', () => {
    const redis = compose.services.redis!;
    assert.match(redis.environment!.REDIS_PASSWORD!, /^\$\{STEVEDORE_REDIS_PASSWORD:\?/);
    // `redis-server -` reads its configuration (requirepass) from stdin, which the entrypoint fills.
    assert.ok(redis.command!.includes('-'));
    assert.match(redis.entrypoint!.join(' '), /requirepass \$\$REDIS_PASSWORD/);
    assert.ok(!redis.command!.join(' ').includes('REDIS_PASSWORD') && !redis.command!.includes('--requirepass'));
    assert.match(redis.healthcheck!.test.join(' '), /REDISCLI_AUTH=/);
    for (const role of ['api', 'worker']) {
      assert.match(
        compose.services[role]!.environment!.REDIS_URL!,
        /^redis:\/\/:\$\{STEVEDORE_REDIS_PASSWORD:\?[^}]*\}@redis:6379\/0$/,
        role,
      );
      assert.equal(compose.services[role]!.environment!.STEVEDORE_ALLOW_UNAUTHENTICATED_REDIS, undefined);
    }
  });

  it('runs buildkitd on TCP with mutual TLS only, and gives the workers the client certificate', () => {
    const bk = compose.services.buildkitd!;
    const flag = (name: string) => bk.command![bk.command!.indexOf(name) + 1];
    assert.deepEqual(
      bk.command!.filter((a, i) => bk.command![i - 1] === '--addr'),
      ['tcp://0.0.0.0:1234'],
      'one listener: TCP',
    );
    assert.equal(flag('--tlscacert'), '/etc/buildkit/tls/ca.pem', 'a CA: client certificates required');
    assert.equal(flag('--tlscert'), '/etc/buildkit/tls/cert.pem');
    assert.equal(flag('--tlskey'), '/etc/buildkit/tls/key.pem');
    assert.ok(bk.volumes!.some((v) => /^\$\{STEVEDORE_BUILDKIT_CERTS:\?[^}]*\}\/daemon:\/etc\/buildkit\/tls:ro$/.test(v)));
    assert.ok(bk.healthcheck!.test.includes('--tlsdir'), 'the health check speaks TLS too');
    const worker = compose.services.worker!;
    assert.equal(worker.environment!.BUILDKIT_HOST, 'tcp://buildkitd:1234');
    assert.equal(worker.environment!.STEVEDORE_BUILDKIT_TLS_DIR, '/etc/stevedore/buildkit-tls');
    assert.ok(worker.volumes!.some((v) => /\}\/client:\/etc\/stevedore\/buildkit-tls:ro$/.test(v)));
    assert.equal(compose.services.api!.environment!.BUILDKIT_HOST, undefined, 'the api never talks to buildkitd');
  });

  it('keeps buildkitd off the network of Redis and the api', () => {
    assert.deepEqual(Object.keys(compose.networks ?? {}).sort(), ['build', 'control']);
    const on = (network: string) =>
      Object.entries(compose.services)
        .filter(([, s]) => (s.networks ?? ['default']).includes(network))
        .map(([name]) => name)
        .sort();
    assert.deepEqual(on('build'), ['buildkitd', 'registry', 'worker']);
    assert.deepEqual(on('control'), ['api', 'redis', 'registry', 'trivy', 'worker']);
    assert.deepEqual(on('default'), [], 'every service names its networks');
    assert.ok(!Object.keys(compose.services.api!.depends_on ?? {}).includes('buildkitd'));
  });

  it('configures the stevedore roles only with variables the service reads', () => {
    for (const role of ['api', 'worker']) {
      for (const variable of Object.keys(compose.services[role]!.environment ?? {}))
        assert.ok(variable in CONFIG_VARIABLES, `${role}: ${variable}`);
    }
  });
});
