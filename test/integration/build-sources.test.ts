import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { waitForJob } from '../support/build-helpers.js';
import { serveGitRepo } from '../support/git-server.js';
import { jobsClient } from '../support/grpc-jobs.js';
import { AUTH, startStack, TOKEN, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

describe('build sources: git, a server-side context root, gRPC', () => {
  let stack: Stack;
  let server: any;
  let git: Awaited<ReturnType<typeof serveGitRepo>>;
  const root = tempDir('stv-ctx-root-');
  before(async () => {
    mkdirSync(join(root, 'svc'));
    writeFileSync(join(root, 'svc', 'Dockerfile'), 'FROM scratch\nCOPY hello.txt /hello.txt\n');
    writeFileSync(join(root, 'svc', 'hello.txt'), 'from the context root\n');
    symlinkSync('/etc', join(root, 'escape'));
    git = await serveGitRepo({
      'app/Dockerfile': 'FROM debian:bookworm-slim\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt\n',
      'app/msg.txt': 'from git\n',
    });
    // The git server is on loopback: builds may fetch from it only because the operator allows it.
    stack = await startStack({ buildkit: true, overrides: { contextRoot: root, buildAllowedHosts: [new URL(git.url).host] } });
    server = stack.app.getHttpServer();
  });
  after(async () => {
    git?.close();
    await stack?.stop();
  });

  it('builds from a git repository at a commit and subdirectory, with OCI annotations and labels', async () => {
    const tag = `${stack.registry.address}/team/fromgit:1`;
    const { body } = await request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({
        action: 'build',
        context: { git: git.url, ref: git.commit, subdir: 'app' },
        tags: [tag],
        labels: { 'com.example.team': 'platform' },
      })
      .expect(202);
    const job = await waitForJob(server, body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const events = (await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(AUTH).expect(200)).body.items;
    assert.ok(events.some((e: any) => e.type === 'log' && e.data.line === 'from git'));
    assert.equal(job.result.image_info.config.labels['com.example.team'], 'platform');
    const index = (await (
      await fetch(`http://${stack.registry.address}/v2/team/fromgit/manifests/1`, {
        headers: { accept: 'application/vnd.oci.image.index.v1+json' },
      })
    ).json()) as { annotations?: Record<string, string> };
    const manifest = (await (
      await fetch(`http://${stack.registry.address}/v2/team/fromgit/manifests/${job.result.image_info.manifest_digest}`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      })
    ).json()) as { annotations?: Record<string, string> };
    const annotations = { ...index.annotations, ...manifest.annotations };
    assert.equal(annotations['org.opencontainers.image.revision'], git.commit);
    assert.equal(annotations['org.opencontainers.image.source'], git.url);
  });

  it('builds a dockerfile_path under STEVEDORE_CONTEXT_ROOT and refuses one that leaves it', async () => {
    const ok = await waitForJob(
      server,
      (await request(server).post('/v1/jobs').set(AUTH).send({ action: 'build', dockerfile_path: 'svc/Dockerfile' }).expect(202)).body.id,
    );
    assert.equal(ok.state, 'succeeded', JSON.stringify(ok.error));
    const escaped = await waitForJob(
      server,
      (await request(server).post('/v1/jobs').set(AUTH).send({ action: 'build', dockerfile_path: 'escape/passwd' }).expect(202)).body.id,
    );
    assert.equal(escaped.state, 'failed');
    assert.equal(escaped.error.code, 'INVALID_CONTEXT');
  });

  it('takes a build over gRPC and streams its step events through Watch', async () => {
    const jobs = jobsClient(stack.grpcAddress, TOKEN);
    try {
      const job = await jobs.submit({
        build: {
          dockerfile_inline: 'FROM debian:bookworm-slim\nRUN echo over-grpc\n',
          tags: [`${stack.registry.address}/team/grpc:1`],
          build_args: { A: 'b' },
          provenance: false,
        },
      });
      const events = await jobs.watch(job.id);
      assert.equal(events.at(-1).data.state, 'succeeded', JSON.stringify(events.at(-1)));
      assert.ok(events.some((e) => e.type === 'step' && /RUN echo over-grpc/.test(e.data.step.name)));
      assert.ok(events.some((e) => e.type === 'log' && e.data.line === 'over-grpc'));
      const done = await jobs.get(job.id);
      assert.deepEqual(JSON.parse(done.request_json).build_args, { A: 'b' });
      assert.equal(JSON.parse(done.request_json).provenance, false);
    } finally {
      jobs.close();
    }
  });
});
