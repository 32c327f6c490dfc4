import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const MiB = 1024 * 1024;

describe('optimize with real images, a real buildkitd and a container runtime', () => {
  let stack: Stack;
  let server: any;
  const build = async (dockerfile: string, tag: string) => {
    const job = await waitForJob(
      server,
      (
        await request(server)
          .post('/v1/jobs')
          .set(AUTH)
          .send({ action: 'build', dockerfile_inline: dockerfile, tags: [tag], provenance: false })
          .expect(202)
      ).body.id,
    );
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
  };
  const optimize = async (body: object) =>
    waitForJob(
      server,
      (
        await request(server)
          .post('/v1/jobs')
          .set(AUTH)
          .send({ action: 'optimize', ...body })
          .expect(202)
      ).body.id,
      undefined,
      900_000,
    );

  before(async () => {
    stack = await startStack({ buildkit: true, overrides: { smokeRuntime: 'docker' } });
    server = stack.app.getHttpServer();
  });
  after(async () => stack?.stop());

  it('finds 40 MiB written then deleted, with each layer and its instruction', async () => {
    const tag = `${stack.registry.address}/team/wasteful:1`;
    await build('FROM debian:bookworm-slim\nRUN head -c 41943040 /dev/urandom > /big.bin\nRUN rm /big.bin\nCMD ["true"]\n', tag);
    const job = await optimize({ image: tag });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const a = job.result.image_analysis;
    assert.ok(a.wasted_bytes >= 40 * MiB, `wasted ${a.wasted_bytes}`);
    assert.ok(a.efficiency < 1);
    assert.ok(
      a.layers.some((l: any) => /head -c 41943040/.test(l.created_by) && l.bytes_added >= 40 * MiB),
      JSON.stringify(a.layers),
    );
    assert.ok(a.layers.some((l: any) => /rm \/big.bin/.test(l.created_by) && l.files_removed >= 1));
  });

  it('reports apt lists left behind under cache_paths', async () => {
    const tag = `${stack.registry.address}/team/aptlists:1`;
    await build('FROM debian:bookworm-slim\nRUN apt-get update\n', tag);
    const job = await optimize({ image: tag, target_size: '10MB' });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const lists = job.result.image_analysis.cache_paths.find((c: any) => c.kind === 'apt-lists');
    assert.ok(lists && lists.size_bytes > 1 * MiB, JSON.stringify(job.result.image_analysis.cache_paths));
    assert.equal(job.result.target.met, false);
    assert.ok(job.result.target.gap_bytes > 0);
  });

  it('rewrites a naive Debian Dockerfile, and the verified rewrite is at least 50% smaller and behaves the same', async () => {
    const naive = 'FROM debian:bookworm-slim\nRUN apt-get update\nRUN apt-get install -y python3-pip\nCMD python3 -c "print(42)"\n';
    const job = await optimize({ dockerfile_inline: naive, verify: true, target_size: '100MB' });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const ids = job.result.optimization_suggestions.map((s: any) => s.id);
    assert.ok(ids.length >= 3, JSON.stringify(ids));
    assert.match(job.result.optimized_dockerfile, /--no-install-recommends/);
    assert.match(job.result.optimized_dockerfile, /rm -rf \/var\/lib\/apt\/lists/);
    const v = job.result.verification;
    console.log(
      `optimize verify: ${v.original_size_bytes} -> ${v.optimized_size_bytes} bytes, reduction ${v.reduction}, smoke ${v.smoke_test}`,
    );
    assert.ok(v.reduction >= 0.5, `reduction ${v.reduction}: ${v.original_size_bytes} -> ${v.optimized_size_bytes}`);
    assert.equal(v.smoke_test, 'passed', JSON.stringify(v.details));
  });

  it('reads the Dockerfile and .dockerignore from an uploaded context', async () => {
    const upload = await uploadContext(
      server,
      await tarGz({ 'build/Dockerfile': 'FROM debian:latest\nADD app.txt /app.txt\n', 'app.txt': 'x' }),
    );
    const job = await optimize({ context: { upload: upload.body.digest }, dockerfile_path: 'build/Dockerfile' });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.ok(job.result.optimization_suggestions.length > 0);
    assert.match(job.result.optimized_dockerfile, /COPY app.txt \/app.txt/);
  });
});
