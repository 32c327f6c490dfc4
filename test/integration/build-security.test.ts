import assert from 'node:assert/strict';
import { randomBytes, createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const SECRET = `s3cr3t-${randomBytes(12).toString('hex')}`;
process.env.STV_TEST_BUILD_SECRET = SECRET;

describe('build secrets and malicious build input', () => {
  let stack: Stack;
  let server: any;
  before(async () => {
    stack = await startStack({ buildkit: true, overrides: { buildSecrets: { token: { env: 'STV_TEST_BUILD_SECRET' } } } });
    server = stack.app.getHttpServer();
  });
  after(async () => stack?.stop());

  it('mounts a server-side secret into RUN and leaves it in no layer, event, log line or Redis key', async () => {
    const tag = `${stack.registry.address}/team/secret:1`;
    const dockerfile =
      'FROM debian:bookworm-slim\nRUN --mount=type=secret,id=token sha256sum ' +
      '/run/secrets/token | cut -c1-64 > /token.sha && cat /token.sha && echo used-the-secret\n';
    const { body } = await request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'build', dockerfile_inline: dockerfile, secrets: ['token'], tags: [tag] })
      .expect(202);
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));

    const events = JSON.stringify((await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(AUTH).expect(200)).body);
    assert.ok(events.includes(createHash('sha256').update(SECRET).digest('hex')), 'the RUN step read the secret');
    assert.ok(!events.includes(SECRET), 'not in events or log lines');
    assert.ok(!JSON.stringify(job).includes(SECRET), 'not in the job record');

    // Every blob of every pushed manifest, decompressed.
    const base = `http://${stack.registry.address}/v2/team/secret`;
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';
    const index = (await (await fetch(`${base}/manifests/1`, { headers: { accept } })).json()) as { manifests?: { digest: string }[] };
    for (const m of index.manifests ?? []) {
      const manifest = (await (await fetch(`${base}/manifests/${m.digest}`, { headers: { accept } })).json()) as {
        config: { digest: string };
        layers: { digest: string }[];
      };
      for (const blob of [manifest.config, ...manifest.layers]) {
        let bytes = Buffer.from(await (await fetch(`${base}/blobs/${blob.digest}`)).arrayBuffer());
        if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
        assert.ok(!bytes.includes(SECRET), `secret in blob ${blob.digest}`);
      }
    }

    const redis = new Redis(stack.redisUrl);
    try {
      for (const key of await redis.keys('*')) {
        const type = await redis.type(key);
        const value =
          type === 'string'
            ? await redis.getBuffer(key)
            : type === 'hash'
              ? await redis.hgetall(key)
              : type === 'stream'
                ? await redis.xrange(key, '-', '+')
                : type === 'zset'
                  ? await redis.zrange(key, '0', '-1')
                  : type === 'list'
                    ? await redis.lrange(key, '0', '-1')
                    : type === 'set'
                      ? await redis.smembers(key)
                      : '';
        assert.ok(
          !JSON.stringify(value instanceof Buffer ? value.toString('latin1') : value).includes(SECRET),
          `secret in Redis key ${key}`,
        );
      }
    } finally {
      redis.disconnect();
    }
  });

  const bad: [string, object, string][] = [
    ['a tag that is an option', { dockerfile_inline: 'FROM scratch', tags: ['--output=type=local,dest=/'] }, 'tags.0'],
    ['a tag with shell', { dockerfile_inline: 'FROM scratch', tags: ['reg.example/app:1;rm -rf /'] }, 'tags.0'],
    ['a build-arg name that is an option', { dockerfile_inline: 'FROM scratch', build_args: { '--no-cache': 'x' } }, 'build_args'],
    ['a build-arg name with shell', { dockerfile_inline: 'FROM scratch', build_args: { 'A;touch /x': 'x' } }, 'build_args'],
    [
      'dockerfile_path that traverses',
      { context: { upload: 'sha256:' + 'a'.repeat(64) }, dockerfile_path: '../../etc/passwd' },
      'dockerfile_path',
    ],
    ['an absolute dockerfile_path', { dockerfile_path: '/etc/passwd' }, 'dockerfile_path'],
    ['an unknown context digest', { context: { upload: 'sha256:' + 'b'.repeat(64) } }, 'context.upload'],
    ['a platform not on the allowed list', { dockerfile_inline: 'FROM scratch', platforms: ['linux/s390x'] }, 'platforms.0'],
    ['a secret the server does not have', { dockerfile_inline: 'FROM scratch', secrets: ['aws'] }, 'secrets.0'],
    ['a target that is an option', { dockerfile_inline: 'FROM scratch', target: '-x' }, 'target'],
    ['a git URL that is an option', { context: { git: '--upload-pack=touch /x' } }, 'context.git'],
    ['nothing to build', { tags: ['reg.example/app:1'] }, 'context'],
  ];
  for (const [name, body, path] of bad) {
    it(`refuses ${name} with 400`, async () => {
      const res = await request(server)
        .post('/v1/jobs')
        .set(AUTH)
        .send({ action: 'build', ...body });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.ok(
        res.body.error.details.fields.some((f: { path: string }) => f.path === path || f.path.startsWith(path)),
        JSON.stringify(res.body.error.details),
      );
    });
  }

  it('refuses context tars that escape with 400 and keeps nothing', async () => {
    const dotdot = await tarGz({ 'evil.txt': 'x' }, ['--transform', 's,^\\./,../,']);
    const res = await uploadContext(server, dotdot);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'INVALID_CONTEXT');
    const absolute = await tarGz({ 'evil.txt': 'x' }, ['--transform', 's,^\\./,/tmp/,', '-P']);
    assert.equal((await uploadContext(server, absolute)).status, 400);
    assert.equal((await uploadContext(server, Buffer.from('not a tar at all'))).status, 400);
    assert.equal((await request(server).post('/v1/contexts').set(AUTH).set('content-type', 'application/json').send('{}')).status, 415);
    const huge = await request(server)
      .post('/v1/contexts')
      .set(AUTH)
      .set('content-type', 'application/x-tar')
      .set('content-length', String(stack.config.contextMaxBytes + 1))
      .send(Buffer.alloc(16));
    assert.equal(huge.status, 413);
    assert.equal(huge.body.error.code, 'CONTEXT_TOO_LARGE');
  });
});
