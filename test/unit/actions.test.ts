import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { z } from 'zod';
import { ACTION_TABLE, ACTIONS, jobRequestSchema, type JobRequest, type JobRequests } from '../../src/jobs/actions.js';
import { PROCESSORS, createProcessors, type WorkerDeps } from '../../src/workers/processors.js';

// The request types are the schemas' output, both ways round (no hand-written copy to drift).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const requestTypeIsSchemaOutput: Same<JobRequest, z.output<typeof jobRequestSchema>> = true;
const buildRequestIsItsRow: Same<JobRequests['build'], z.output<(typeof ACTION_TABLE)['build']['schema']>> = true;

const actionOf = (schema: unknown) => (schema as { shape: { action: { value: string } } }).shape.action.value;

describe('the action table', () => {
  it('lists the actions in their public order (a new action comes after these)', () => {
    assert.deepEqual(ACTIONS.slice(0, 7), ['build', 'scan', 'push', 'sign', 'verify', 'inspect', 'optimize']);
    assert.ok(requestTypeIsSchemaOutput && buildRequestIsItsRow);
  });

  it('files each schema under its own action, with settings that make sense', () => {
    for (const action of ACTIONS) {
      const row = ACTION_TABLE[action];
      assert.equal(actionOf(row.schema), action);
      assert.ok(row.timeoutSeconds > 0 && row.attempts >= 1 && row.concurrency >= 1, action);
    }
  });

  it('puts every action in the request union once, in the documented order (openapi.yaml)', () => {
    const options = (jobRequestSchema as unknown as { options: unknown[] }).options.map(actionOf);
    assert.deepEqual(options.slice(0, 7), ['inspect', 'build', 'scan', 'sign', 'verify', 'push', 'optimize']);
    assert.deepEqual([...options].sort(), [...ACTIONS].sort());
  });

  it('parses a request into its action type', () => {
    const request = jobRequestSchema.parse({
      action: 'build',
      dockerfile_inline: 'FROM scratch',
      tags: ['127.0.0.1:5000/a:1'],
      sign: { key: 'release' },
    });
    assert.equal(request.action, 'build');
    if (request.action === 'build') assert.deepEqual(request.sign, { key: 'release' });
  });
});

describe('the processors', () => {
  it('has one for every action, built by its own factory', () => {
    const deps = { config: { jobRetentionSeconds: 60, concurrency: {} } } as unknown as WorkerDeps;
    assert.deepEqual(Object.keys(PROCESSORS).sort(), [...ACTIONS].sort());
    assert.deepEqual(
      createProcessors(deps).map((p) => p.action),
      [...ACTIONS],
    );
  });
});
