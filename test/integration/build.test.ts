import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { tarGz, uploadContext, waitForJob } from '../support/build-helpers.js';
import { readLayerFiles } from '../support/images.js';
import { pidsWithArgv } from '../support/proc.js';
import { BASE_PLATFORMS } from '../support/env.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';

const MULTI_STAGE = `FROM debian:bookworm-slim AS builder
ARG GREETING=hello
RUN echo "$GREETING from the builder stage" > /greeting && echo built-it
FROM debian:bookworm-slim
COPY --from=builder /greeting /greeting
COPY app.txt /app.txt
CMD ["cat", "/greeting"]
`;

describe('build jobs on a real buildkitd, pushing to a real registry', () => {
  let stack: Stack;
  let server: any;
  let context: string;
  const build = (body: object) =>
    request(server)
      .post('/v1/jobs')
      .set(AUTH)
      .send({ action: 'build', ...body });

  before(async () => {
    stack = await startStack({ buildkit: true });
    server = stack.app.getHttpServer();
    const upload = await uploadContext(server, await tarGz({ Dockerfile: MULTI_STAGE, 'app.txt': 'app\n' }));
    assert.equal(upload.status, 201, JSON.stringify(upload.body));
    assert.match(upload.body.digest, /^sha256:[0-9a-f]{64}$/);
    context = upload.body.digest;
    const again = await uploadContext(server, await tarGz({ Dockerfile: MULTI_STAGE, 'app.txt': 'app\n' }));
    assert.ok([200, 201].includes(again.status));
  });
  after(async () => stack?.stop());

  it('builds a multi-stage Dockerfile from an uploaded context with a build arg, pushes it, and it runs', async () => {
    const tag = `${stack.registry.address}/team/app:1`;
    const submitted = await build({ context: { upload: context }, build_args: { GREETING: 'ahoy' }, tags: [tag] }).expect(202);
    const job = await waitForJob(server, submitted.body.id);
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const pushed = await new RegistryClient(stack.registry.address).manifestDigest('team/app', '1');
    assert.equal(job.result.build.digest, pushed, 'result digest = registry digest');
    assert.equal(job.result.image_info.digest, pushed);
    assert.deepEqual(job.result.tags, [tag]);
    assert.ok(job.result.build.steps.length >= 3);

    const events = (await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(AUTH).expect(200)).body.items;
    const steps = events.filter((e: any) => e.type === 'step').map((e: any) => e.data.step);
    assert.ok(
      steps.some((s: any) => s.state === 'started' && /RUN echo/.test(s.name)),
      'a step event per state change, named by its instruction',
    );
    assert.ok(steps.some((s: any) => s.state === 'completed' && typeof s.duration_ms === 'number'));
    const runStep = steps.find((s: any) => /RUN echo/.test(s.name));
    assert.ok(
      events.some((e: any) => e.type === 'log' && e.data.step_id === runStep.id && e.data.line === 'built-it'),
      'log lines tied to their step',
    );

    const pinned = `${stack.registry.address}/team/app@${job.result.image_info.manifest_digest}`;
    execFileSync('docker', ['pull', '-q', pinned]);
    const out = execFileSync('docker', ['run', '--rm', pinned], { encoding: 'utf8' });
    assert.equal(out.trim(), 'ahoy from the builder stage');
  });

  it('reports every step cached on the same build again, with the same image', async () => {
    const tag = `${stack.registry.address}/team/app:1`;
    const first = await waitForJob(
      server,
      (await build({ context: { upload: context }, build_args: { GREETING: 'ahoy' }, tags: [tag] }).expect(202)).body.id,
    );
    const again = await waitForJob(
      server,
      (await build({ context: { upload: context }, build_args: { GREETING: 'ahoy' }, tags: [tag] }).expect(202)).body.id,
    );
    assert.equal(again.state, 'succeeded', JSON.stringify(again.error));
    assert.ok(again.result.build.steps.length > 0);
    // FROM is BuildKit resolving the base image: never "cached", as in buildx's output.
    const work = again.result.build.steps.filter((s: any) => !/\] FROM /.test(s.name));
    assert.ok(work.length >= 3 && work.every((s: any) => s.cached), JSON.stringify(again.result.build.steps));
    assert.equal(again.result.build.cache_hits, work.length);
    assert.equal(again.result.image_info.manifest_digest, first.result.image_info.manifest_digest, 'same image manifest');
    const noProvenance = await waitForJob(
      server,
      (
        await build({
          context: { upload: context },
          build_args: { GREETING: 'ahoy' },
          tags: [`${stack.registry.address}/team/plain:1`],
          provenance: false,
        }).expect(202)
      ).body.id,
    );
    const noProvenance2 = await waitForJob(
      server,
      (
        await build({
          context: { upload: context },
          build_args: { GREETING: 'ahoy' },
          tags: [`${stack.registry.address}/team/plain:1`],
          provenance: false,
        }).expect(202)
      ).body.id,
    );
    assert.equal(
      noProvenance2.result.build.digest,
      noProvenance.result.build.digest,
      'without an attestation the pushed digest itself repeats',
    );
  });

  it('builds for two platforms into one index', async () => {
    const tag = `${stack.registry.address}/team/multi:1`;
    const dockerfile = 'FROM scratch\nCOPY app.txt /app.txt\n';
    const job = await waitForJob(
      server,
      (
        await build({
          dockerfile_inline: dockerfile,
          context: { upload: context },
          platforms: ['linux/amd64', 'linux/arm64'],
          tags: [tag],
        }).expect(202)
      ).body.id,
    );
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    assert.deepEqual([...job.result.image_info.platforms].sort(), ['linux/amd64', 'linux/arm64']);
    assert.equal(job.result.build.digest, await new RegistryClient(stack.registry.address).manifestDigest('team/multi', '1'));
  });

  // `uname -m` and `dpkg --print-architecture` in each foreign base platform's RUN step
  // (the default base holds linux/arm64; STEVEDORE_BASE_PLATFORMS may add more).
  const UNAME: Record<string, string> = {
    'linux/arm64': 'aarch64\narm64\n',
    'linux/arm/v7': 'armv7l\narmhf\n',
    'linux/ppc64le': 'ppc64le\nppc64el\n',
    'linux/s390x': 's390x\ns390x\n',
    'linux/386': 'i686\ni386\n',
    'linux/mips64le': 'mips64\nmips64el\n',
  };
  for (const platform of BASE_PLATFORMS.filter((p) => p !== 'linux/amd64')) {
    it(`runs a RUN step of a ${platform} build on the ${platform} base, under QEMU`, async () => {
      const repo = `team/${platform.replace(/\W+/g, '-')}`;
      const tag = `${stack.registry.address}/${repo}:1`;
      const job = await waitForJob(
        server,
        (
          await build({
            dockerfile_inline: 'FROM debian:bookworm-slim\nRUN uname -m > /arch && dpkg --print-architecture >> /arch\n',
            context: { upload: context },
            platforms: [platform],
            provenance: false,
            tags: [tag],
          }).expect(202)
        ).body.id,
      );
      assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
      const [os, arch, variant] = platform.split('/');
      const client = new RegistryClient(stack.registry.address);
      let image = await client.getManifest(repo, '1');
      if (image.json.manifests) {
        const own = image.json.manifests.find((m) => m.platform?.architecture === arch);
        assert.ok(own, JSON.stringify(image.json));
        image = await client.getManifest(repo, own.digest);
      }
      const config = await client.getJsonBlob<{ os: string; architecture: string; variant?: string }>(repo, image.json.config!.digest);
      assert.deepEqual([config.os, config.architecture], [os, arch]);
      if (variant) assert.equal(config.variant, variant);
      // The RUN step's layer is the last one; /arch is in it.
      const top = image.json.layers!.at(-1)!;
      const files = await readLayerFiles(await client.getBlob(repo, top.digest, top.size), ['arch']);
      assert.equal(files.get('arch')?.head.toString('utf8'), UNAME[platform]);
    });
  }

  it('fails a broken RUN with BUILD_FAILED, naming the step and carrying its log', async () => {
    const job = await waitForJob(
      server,
      (await build({ dockerfile_inline: 'FROM debian:bookworm-slim\nRUN echo about-to-fail && exit 3\n' }).expect(202)).body.id,
    );
    assert.equal(job.state, 'failed');
    assert.equal(job.error.code, 'BUILD_FAILED');
    assert.match(job.error.details.step, /RUN echo about-to-fail/);
    assert.ok(job.error.details.logs.includes('about-to-fail'), JSON.stringify(job.error.details));
  });

  it('cancels a running build within 10 s and leaves no process behind', async () => {
    // This build's own process: GNU sleep sums its arguments, so a random second one gives
    // an argv nothing else on the machine has (another test's `sleep 300` is not this one).
    const argv = ['sleep', '300', `0.${randomInt(1e8, 1e9)}`];
    const sleeping = async () => (await pidsWithArgv(argv)).length > 0;
    const { body } = await build({
      dockerfile_inline: `FROM debian:bookworm-slim\nRUN echo sleeping && ${argv.join(' ')}\n`,
      no_cache: true,
    }).expect(202);
    const deadline = Date.now() + 60_000;
    while (!(await sleeping()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    assert.ok(await sleeping(), 'the RUN step started');
    const t0 = Date.now();
    await request(server).post(`/v1/jobs/${body.id}/cancel`).set(AUTH).expect(202);
    const job = await waitForJob(server, body.id, ['cancelled', 'failed', 'succeeded'], 15_000);
    assert.equal(job.state, 'cancelled');
    while ((await sleeping()) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 100));
    const killedMs = Date.now() - t0;
    console.log(`# cancel: the RUN step's process was gone ${killedMs} ms after the cancel request`);
    assert.ok(!(await sleeping()), `${argv.join(' ')} is gone`);
    assert.ok(killedMs < 10_000, `stopped in ${killedMs} ms`);
  });

  it("passes BuildKit's lint warnings on as `warning` events and result.build.warnings, once per rule and line", async () => {
    const warned = async (dockerfile: string, platforms?: string[]) => {
      const job = await waitForJob(
        server,
        (await build({ dockerfile_inline: dockerfile, context: { upload: context }, ...(platforms ? { platforms } : {}) }).expect(202)).body
          .id,
      );
      assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
      const events = (await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(AUTH).expect(200)).body.items;
      return { job, events: events.filter((e: any) => e.type === 'warning').map((e: any) => e.data) };
    };
    // Two platforms: each warning still once (not once per platform).
    const { job, events } = await warned('FROM scratch as build\nCOPY app.txt /app.txt\nCMD echo hi\n', ['linux/amd64', 'linux/arm64']);
    const rules = (ws: any[]) => ws.map((w) => `${w.rule}@${w.line}`).sort();
    assert.deepEqual(rules(events), ['FromAsCasing@1', 'JSONArgsRecommended@3'], JSON.stringify(events));
    assert.deepEqual(rules(job.result.build.warnings), ['FromAsCasing@1', 'JSONArgsRecommended@3']);
    const fromAs = events.find((w: any) => w.rule === 'FromAsCasing');
    assert.match(fromAs.message, /'as' and 'FROM' keywords' casing do not match/);
    assert.match(fromAs.url, /^https:\/\/docs\.docker\.com\//);
    assert.match(fromAs.step_id, /^sha256:[0-9a-f]{64}$/);
    assert.ok(!JSON.stringify(events).includes('COPY app.txt'), 'the Dockerfile BuildKit sends along is not passed on');

    const clean = await warned('FROM scratch AS build\nCOPY app.txt /app.txt\nCMD ["echo", "hi"]\n');
    assert.deepEqual(clean.events, []);
    assert.deepEqual(clean.job.result.build.warnings, []);
  });

  it("keeps BuildKit's warnings in a failed build's error details", async () => {
    const job = await waitForJob(
      server,
      (await build({ dockerfile_inline: 'FROM debian:bookworm-slim as base\nRUN echo warned-then-failed && exit 3\n' }).expect(202)).body
        .id,
    );
    assert.equal(job.error?.code, 'BUILD_FAILED', JSON.stringify(job.error));
    assert.deepEqual(
      job.error.details.warnings.map((w: any) => [w.rule, w.line]),
      [['FromAsCasing', 1]],
    );
  });

  it('masks a build secret quoted by a warning, as in logs', async () => {
    const value = `StvSecret${Date.now()}`;
    await request(server)
      .put('/v1/secrets/stage_secret')
      .set(AUTH)
      .send({ value })
      .expect((r) => assert.ok(r.status < 300, r.text));
    const job = await waitForJob(
      server,
      (
        await build({
          dockerfile_inline: `FROM scratch AS ${value}\nCOPY app.txt /app.txt\n`,
          context: { upload: context },
          secrets: ['stage_secret'],
        }).expect(202)
      ).body.id,
    );
    assert.equal(job.state, 'succeeded', JSON.stringify(job.error));
    const events = (await request(server).get(`/v1/jobs/${job.id}/events?follow=false`).set(AUTH).expect(200)).body.items;
    const casing = events.find((e: any) => e.type === 'warning' && e.data.rule === 'StageNameCasing');
    assert.ok(casing, JSON.stringify(events.filter((e: any) => e.type === 'warning')));
    assert.equal(casing.data.message, "Stage name '***' should be lowercase");
    // (The request's own dockerfile_inline holds it, as the tenant wrote it; nothing the build wrote does.)
    assert.ok(!JSON.stringify(events).includes(value) && !JSON.stringify(job.result).includes(value));
  });
});
