import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { baseLayoutDir } from '../../src/runtime/seed-base-image.js';
import { waitForJob } from '../support/build-helpers.js';
import { CACHE_DIR, TOOLS } from '../support/env.js';
import { startSeededRegistry, type StartedRegistry } from '../support/services.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

const PASSWORD = `pw-${Date.now()}-do-not-leak`;
process.env.STV_TEST_COSIGN_PASSWORD = PASSWORD;

/** A real cosign key pair, made with the real cosign. */
async function keyPair(dir: string, name: string): Promise<{ key: string; pub: string }> {
  await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(dir, name)], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: PASSWORD },
  });
  return { key: join(dir, `${name}.key`), pub: join(dir, `${name}.pub`) };
}

describe('sign, verify and push with the real cosign and real registries', () => {
  let stack: Stack;
  let server: any;
  let other: StartedRegistry;
  let keysDir: string;
  let stranger: { key: string; pub: string };
  const job = async (body: object) => waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send(body).expect(202)).body.id);

  before(async () => {
    keysDir = tempDir('stv-keys-');
    const release = await keyPair(keysDir, 'release');
    stranger = await keyPair(keysDir, 'stranger');
    // Signing keys are server configuration: a keys file, password from the environment.
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({ default: 'release', keys: [{ name: 'release', key: release.key, password_env: 'STV_TEST_COSIGN_PASSWORD' }] }),
    );
    other = await startSeededRegistry();
    // A second loopback registry (and a closed port) must be configured to be named (issue 14).
    stack = await startStack({ overrides: { signing: { offline: true, keysFile }, registryAllowedHosts: [other.address, '127.0.0.1:1'] } });
    server = stack.app.getHttpServer();
  });
  after(async () => {
    await other?.container.stop();
    await stack?.stop();
  });

  it('signs by digest, verifies true, and the real cosign verify agrees with the published key', async () => {
    const image = `${stack.registry.address}/library/debian:bookworm-slim`;
    const signed = await job({ action: 'sign', image });
    assert.equal(signed.state, 'succeeded', JSON.stringify(signed.error));
    const digest = await new RegistryClient(stack.registry.address).manifestDigest('library/debian', 'bookworm-slim');
    // The seed is an index: it and each platform manifest are signed (issue 16).
    const index = await new RegistryClient(stack.registry.address).getManifest('library/debian', digest!);
    const platforms = index.json.manifests!.map((d) => ({
      platform: [d.platform!.os, d.platform!.architecture, d.platform!.variant].filter(Boolean).join('/'),
      digest: d.digest,
    }));
    assert.deepEqual(signed.result.signed, {
      reference: `${stack.registry.address}/library/debian@${digest}`,
      digest,
      key: 'release',
      platforms,
    });

    const verified = await job({ action: 'verify', image });
    assert.equal(verified.result.verification.verified, true, JSON.stringify(verified.result.verification));
    assert.deepEqual(verified.result.verification.signatures, [{ key: 'release', digest }]);

    const keys = (await request(server).get('/v1/signing-keys').set(AUTH).expect(200)).body.items;
    assert.equal(keys[0].name, 'release');
    assert.equal(keys[0].default, true);
    assert.match(keys[0].public_key, /BEGIN PUBLIC KEY/);
    const pub = join(keysDir, 'published.pub');
    writeFileSync(pub, keys[0].public_key);
    await runProcess(TOOLS.cosign, [
      'verify',
      '--key',
      pub,
      '--insecure-ignore-tlog=true',
      '--allow-http-registry=true',
      `${stack.registry.address}/library/debian@${digest}`,
    ]);
  });

  it('verifies false, with the reason, for an unsigned image and for one signed by another key', async () => {
    await new RegistryClient(stack.registry.address).pushLayout(baseLayoutDir(CACHE_DIR), 'team/fresh', '1');
    const unsigned = await job({ action: 'verify', image: `${stack.registry.address}/team/fresh:1` });
    assert.equal(unsigned.state, 'succeeded', 'the job answered the question');
    assert.equal(unsigned.result.verification.verified, false);
    assert.ok(unsigned.result.verification.reason);

    await new RegistryClient(stack.registry.address).pushLayout(baseLayoutDir(CACHE_DIR), 'team/foreign', '1');
    const digest = await new RegistryClient(stack.registry.address).manifestDigest('team/foreign', '1');
    await runProcess(
      TOOLS.cosign,
      [
        'sign',
        '--key',
        stranger.key,
        '--yes',
        '--tlog-upload=false',
        '--use-signing-config=false',
        '--allow-http-registry=true',
        `${stack.registry.address}/team/foreign@${digest}`,
      ],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: PASSWORD } },
    );
    const foreign = await job({ action: 'verify', image: `${stack.registry.address}/team/foreign:1` });
    assert.equal(foreign.result.verification.verified, false);
    assert.match(foreign.result.verification.reason, /signature|match/i);
  });

  it('copies to another repository and registry keeping the digest, and the signature verifies there', async () => {
    const source = `${stack.registry.address}/library/debian:bookworm-slim`;
    const digest = await new RegistryClient(stack.registry.address).manifestDigest('library/debian', 'bookworm-slim');
    const copied = await job({
      action: 'push',
      image: source,
      destinations: [`${stack.registry.address}/team/copy:v1`, `${other.address}/mirror/debian:v1`],
    });
    assert.equal(copied.state, 'succeeded', JSON.stringify(copied.error));
    assert.deepEqual(
      copied.result.pushed.map((p: any) => p.digest),
      [digest, digest],
    );
    assert.equal(await new RegistryClient(other.address).manifestDigest('mirror/debian', 'v1'), digest);
    const there = await job({ action: 'verify', image: `${other.address}/mirror/debian:v1` });
    assert.equal(there.result.verification.verified, true, JSON.stringify(there.result.verification));

    const seed = await job({ action: 'push', image: source, registry: other.address });
    assert.equal(seed.state, 'succeeded', JSON.stringify(seed.error));
    assert.deepEqual(seed.result.pushed, [{ reference: `${other.address}/library/debian:bookworm-slim`, digest }]);

    const partly = await job({
      action: 'push',
      image: source,
      destinations: [`${other.address}/ok/debian:1`, '127.0.0.1:1/nowhere/debian:1'],
    });
    assert.equal(partly.state, 'failed');
    assert.equal(partly.error.code, 'PUSH_FAILED');
    assert.equal(partly.error.details.pushed.length, 1);
    assert.equal(partly.error.details.failed[0].reference, '127.0.0.1:1/nowhere/debian:1');
  });

  it('refuses an unknown key, and keeps the key password out of Redis, events and results', async () => {
    const res = await request(server).post('/v1/jobs').set(AUTH).send({ action: 'sign', image: 'debian', key: 'nope' }).expect(400);
    assert.equal(res.body.error.details.fields[0].path, 'key');
    const jobs = (await request(server).get('/v1/jobs?limit=100').set(AUTH).expect(200)).body.items;
    for (const j of jobs) {
      const events = await request(server).get(`/v1/jobs/${j.id}/events?follow=false`).set(AUTH).expect(200);
      assert.ok(!JSON.stringify(events.body).includes(PASSWORD) && !JSON.stringify(j).includes(PASSWORD), `password in job ${j.id}`);
    }
    const redis = new Redis(stack.redisUrl);
    try {
      for (const key of await redis.keys('*')) {
        const type = await redis.type(key);
        const value =
          type === 'string'
            ? await redis.get(key)
            : type === 'hash'
              ? await redis.hgetall(key)
              : type === 'stream'
                ? await redis.xrange(key, '-', '+')
                : type === 'zset'
                  ? await redis.zrange(key, '0', '-1')
                  : type === 'list'
                    ? await redis.lrange(key, '0', '-1')
                    : '';
        assert.ok(!JSON.stringify(value).includes(PASSWORD), `password in Redis key ${key}`);
      }
    } finally {
      redis.disconnect();
    }
  });
});
