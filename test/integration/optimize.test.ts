import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { BuildkitClient } from '../../src/engines/buildkit/buildkit-client.js';
import { ImageInspector } from '../../src/engines/registry/image-inspector.js';
import { verifyRewrite, type VerifyDeps } from '../../src/workers/optimize-verify.js';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const MiB = 1024 * 1024;

describe('optimize with real images and a real buildkitd', () => {
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
    // The default config: smoke tests run through BuildKit (no STEVEDORE_SMOKE_RUNTIME set).
    stack = await startStack({ buildkit: true });
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
    assert.equal(v.details.smoke_runtime, 'buildkit');
    assert.equal(v.details.original_run.stdout, '42\n', JSON.stringify(v.details));
    assert.equal(v.details.optimized_run.stdout, '42\n', JSON.stringify(v.details));
  });

  it('verifies an arm64 rewrite through the API: built, measured and run under QEMU', async () => {
    const job = await optimize({ dockerfile_inline: 'FROM debian:bookworm-slim\nCMD uname -m\n', verify: true, platform: 'linux/arm64' });
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.match(job.result.optimized_dockerfile, /CMD \["uname", ?"-m"\]/);
    const v = job.result.verification;
    assert.equal(v.smoke_test, 'passed', JSON.stringify(v.details));
    assert.equal(v.details.original_run.stdout, 'aarch64\n');
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

  describe('smoke tests through BuildKit (the default runtime), driven directly', () => {
    let n = 0;
    const deps = (): VerifyDeps => ({
      buildkit: stack.app.get(BuildkitClient),
      inspector: stack.app.get(ImageInspector),
      scratchRegistry: stack.registry.address,
      smokeTimeoutSeconds: 4,
    });
    const verify = (original: string, optimized: string, platform?: string) =>
      verifyRewrite(
        { id: `smoke-${++n}`, tenant: 'default' },
        original,
        optimized,
        undefined,
        deps(),
        new AbortController().signal,
        platform,
      );

    it('fails a rewrite whose program prints something else and exits non-zero', async () => {
      const v = await verify(
        'FROM debian:bookworm-slim\nCMD ["echo","hello"]\n',
        'FROM debian:bookworm-slim\nCMD ["sh","-c","echo bye; exit 3"]\n',
      );
      assert.equal(v.smoke_test, 'failed', JSON.stringify(v.details));
      const d = v.details as any;
      assert.deepEqual([d.original_run.exit_code, d.optimized_run.exit_code], [0, 3]);
      assert.deepEqual([d.original_run.stdout, d.optimized_run.stdout], ['hello\n', 'bye\n']);
      assert.match(d.smoke_reason, /exit codes differ/);
    });

    it('fails a rewrite that prints something else with the same exit code', async () => {
      const v = await verify('FROM debian:bookworm-slim\nCMD ["echo","a"]\n', 'FROM debian:bookworm-slim\nCMD ["echo","b"]\n');
      assert.equal(v.smoke_test, 'failed', JSON.stringify(v.details));
      assert.equal((v.details as any).smoke_reason, 'stdout differs');
    });

    it('passes two servers still running at the time limit, and fails a server against a program that exits', async () => {
      const server = 'FROM debian:bookworm-slim\nCMD ["sh","-c","echo listening; exec sleep 1000"]\n';
      const v = await verify(server, 'FROM debian:bookworm-slim\nRUN true\nCMD ["sleep","1000"]\n');
      assert.equal(v.smoke_test, 'passed', JSON.stringify(v.details));
      const d = v.details as any;
      assert.equal(d.original_run.timed_out, true);
      assert.equal(d.optimized_run.timed_out, true);
      assert.equal(d.original_run.stdout, 'listening\n');
      const broken = await verify(server, 'FROM debian:bookworm-slim\nCMD ["sleep","0"]\n');
      assert.equal(broken.smoke_test, 'failed', JSON.stringify(broken.details));
    });

    it("runs the image's command with its ENV, WORKDIR and USER, each time afresh", async () => {
      const dockerfile =
        'FROM debian:bookworm-slim\nENV GREETING=hi\nWORKDIR /srv\nUSER nobody\n' +
        'CMD ["sh","-c","echo $GREETING; pwd; id -u; head -c 8 /dev/urandom | od -An -tx1"]\n';
      const v = await verify(dockerfile, dockerfile);
      const d = v.details as any;
      const [first, second] = [d.original_run.stdout.split('\n'), d.optimized_run.stdout.split('\n')];
      assert.deepEqual(first.slice(0, 3), ['hi', '/srv', '65534'], JSON.stringify(d));
      // The same image (same digest) run twice: a cached step would replay the first run's random bytes.
      assert.notEqual(first[3], second[3]);
      assert.equal(v.smoke_test, 'failed', 'random output differs');
    });

    it('runs a static binary in a scratch image (no shell, no timeout in it)', async () => {
      const scratch = (cmd: string) =>
        `FROM debian:bookworm-slim AS b\nFROM scratch\nCOPY --from=b /usr/sbin/ldconfig /ldconfig\nCMD ${cmd}\n`;
      const v = await verify(scratch('["/ldconfig","--version"]'), scratch('["/ldconfig","--version"]'));
      assert.equal(v.smoke_test, 'passed', JSON.stringify(v.details));
      assert.match((v.details as any).original_run.stdout, /ldconfig/);
      const missing = await verify(scratch('["/ldconfig","--version"]'), scratch('["/nothere"]'));
      assert.equal(missing.smoke_test, 'failed', JSON.stringify(missing.details));
      assert.match((missing.details as any).smoke_reason, /the rewrite did not start: .*nothere/, JSON.stringify(missing.details));
    });

    it('still runs through the Docker engine with STEVEDORE_SMOKE_RUNTIME=docker', async () => {
      const dockerDeps = { ...deps(), smokeRuntime: 'docker' as const };
      const v = await verifyRewrite(
        { id: `smoke-${++n}`, tenant: 'default' },
        'FROM debian:bookworm-slim\nCMD ["echo","hello"]\n',
        'FROM debian:bookworm-slim\nCMD ["sh","-c","echo hello; exit 4"]\n',
        undefined,
        dockerDeps,
        new AbortController().signal,
      );
      assert.equal(v.details.smoke_runtime, 'docker');
      assert.equal(v.smoke_test, 'failed', JSON.stringify(v.details));
      assert.deepEqual([(v.details as any).original_run.exit_code, (v.details as any).optimized_run.exit_code], [0, 4]);
    });

    it('runs an arm64 variant under QEMU', async () => {
      const v = await verify(
        'FROM debian:bookworm-slim\nRUN true\nCMD ["uname","-m"]\n',
        'FROM debian:bookworm-slim\nCMD ["uname","-m"]\n',
        'linux/arm64',
      );
      assert.equal(v.smoke_test, 'passed', JSON.stringify(v.details));
      assert.equal((v.details as any).original_run.stdout, 'aarch64\n');
    });
  });
});
