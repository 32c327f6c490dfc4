import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { jobsClient } from '../support/grpc-jobs.js';
import request from 'supertest';
import { AUTH, startStack, TOKEN, type Stack } from '../support/stack.js';

const rejectsWith = (p: Promise<unknown>, code: status, pattern?: RegExp) =>
  assert.rejects(p, (err: { code: number; details: string }) => {
    assert.equal(err.code, code, `${status[err.code]}: ${err.details}`);
    if (pattern) assert.match(err.details, pattern);
    return true;
  });

describe('stevedore.v1.Jobs over gRPC', () => {
  let stack: Stack;
  let jobs: ReturnType<typeof jobsClient>;
  before(async () => {
    stack = await startStack();
    jobs = jobsClient(stack.grpcAddress, TOKEN);
  });
  after(async () => {
    jobs?.close();
    await stack?.stop();
  });

  it('Submit + Watch: streams the same events as SSE and ends after the terminal one', async () => {
    const job = await jobs.submit({ inspect: { image: 'debian:bookworm-slim' }, timeout_seconds: 30 });
    assert.equal(job.action, 'inspect');
    assert.equal(job.state, 'queued');
    const events = await jobs.watch(job.id);
    assert.deepEqual(
      events.filter((e) => e.type === 'state').map((e) => e.data.state),
      ['queued', 'running', 'succeeded'],
    );
    const result = events.find((e) => e.type === 'result');
    assert.match(result.data.result.image_info.digest, /^sha256:[0-9a-f]{64}$/);
    const resumed = await jobs.watch(job.id, events[1].id);
    assert.deepEqual(
      resumed.map((e) => e.id),
      events.slice(2).map((e) => e.id),
    );

    const done = await jobs.get(job.id);
    assert.equal(done.state, 'succeeded');
    assert.equal(JSON.parse(done.result_json).image_info.digest, result.data.result.image_info.digest);
    const page = await jobs.list({ limit: 1, action: 'inspect' });
    assert.equal(page.items[0].id, job.id);
    await rejectsWith(jobs.cancel(job.id), status.FAILED_PRECONDITION, /JOB_FINISHED/);
  });

  it("takes the seed's registry on InspectJob and stores the joined reference", async () => {
    const job = await jobs.submit({ inspect: { image: 'library/debian:bookworm-slim', registry: stack.registry.address } });
    const events = await jobs.watch(job.id);
    assert.deepEqual(
      events
        .filter((e) => e.type === 'state')
        .map((e) => e.data.state)
        .at(-1),
      'succeeded',
    );
    const done = await jobs.get(job.id);
    assert.deepEqual(JSON.parse(done.request_json), { action: 'inspect', image: `${stack.registry.address}/library/debian:bookworm-slim` });
    await rejectsWith(
      jobs.submit({ verify: { image: `${stack.registry.address}/library/debian:bookworm-slim`, registry: 'registry.example:5000' } }),
      status.INVALID_ARGUMENT,
      /registry/,
    );
  });

  it('maps refusals to gRPC status codes', async () => {
    await rejectsWith(jobs.submit({ inspect: { image: '-oops' } }), status.INVALID_ARGUMENT, /image/);
    await rejectsWith(jobs.submit({ build: { dockerfile_inline: 'FROM scratch', tags: ['--output=x'] } }), status.INVALID_ARGUMENT, /tags/);
    await rejectsWith(jobs.submit({}), status.INVALID_ARGUMENT, /action/);
    await rejectsWith(jobs.get('00000000-0000-4000-8000-000000000000'), status.NOT_FOUND);
    await rejectsWith(jobs.list({ state: 'done' }), status.INVALID_ARGUMENT, /state/);
    await rejectsWith(jobs.watch('00000000-0000-4000-8000-000000000000'), status.NOT_FOUND);
    await jobs.submit({ inspect: { image: 'debian:bookworm-slim' }, idempotency_key: 'grpc-1' });
    await rejectsWith(
      jobs.submit({ inspect: { image: 'debian:bookworm-slim', platform: 'linux/arm64' }, idempotency_key: 'grpc-1' }),
      status.ALREADY_EXISTS,
    );
    const anonymous = jobsClient(stack.grpcAddress);
    await rejectsWith(anonymous.get('00000000-0000-4000-8000-000000000000'), status.UNAUTHENTICATED);
    anonymous.close();
  });

  it('scopes calls to the API key: another tenant gets NOT_FOUND, a read-only key PERMISSION_DENIED', async () => {
    const server = stack.app.getHttpServer();
    const keyFor = async (tenant: string, scopes: string[]) =>
      (await request(server).post('/v1/api-keys').set(AUTH).send({ tenant, scopes }).expect(201)).body.key as string;
    const [teamA, teamB, reader] = [
      jobsClient(stack.grpcAddress, await keyFor('grpc-a', ['jobs:read', 'jobs:write'])),
      jobsClient(stack.grpcAddress, await keyFor('grpc-b', ['jobs:read', 'jobs:write'])),
      jobsClient(stack.grpcAddress, await keyFor('grpc-a', ['jobs:read'])),
    ];
    try {
      const job = await teamA.submit({ inspect: { image: 'debian:bookworm-slim' }, concurrency_key: 'grpc/main' });
      assert.equal(job.tenant, 'grpc-a');
      await rejectsWith(teamB.get(job.id), status.NOT_FOUND);
      await rejectsWith(teamB.cancel(job.id), status.NOT_FOUND);
      await rejectsWith(teamB.watch(job.id), status.NOT_FOUND);
      assert.equal(
        (await teamB.list({})).items.some((j: { id: string }) => j.id === job.id),
        false,
      );
      assert.equal((await reader.get(job.id)).id, job.id);
      await rejectsWith(reader.submit({ inspect: { image: 'debian:bookworm-slim' } }), status.PERMISSION_DENIED, /jobs:write/);
    } finally {
      for (const c of [teamA, teamB, reader]) c.close();
    }
  });
});
