import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJobRequest } from '../../src/admission/parse-request.js';
import { AppError } from '../../src/errors/app-error.js';
import { submitToBody } from '../../src/grpc/jobs.grpc-controller.js';
import { canonicalJson } from '../../src/jobs/job.service.js';
import { toEvent } from '../../src/jobs/job-store.js';
import { tempDir } from '../support/temp-dir.js';

describe('canonicalJson', () => {
  it('does not depend on key order', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, { y: 2, x: 1 }], c: null } }),
      canonicalJson({ a: { c: null, d: [1, { x: 1, y: 2 }] }, b: 1 }),
    );
    assert.notEqual(canonicalJson({ a: 1 }), canonicalJson({ a: '1' }));
    // What admission adds (a named policy's snapshot) is not part of what the caller sent.
    assert.equal(
      canonicalJson({ action: 'scan', policy: 'prod', policy_snapshot: { version: 2 } }),
      canonicalJson({ action: 'scan', policy: 'prod', policy_snapshot: { version: 1 } }),
    );
  });
});

describe('parseJobRequest', () => {
  it('accepts an inspect request', () => {
    assert.deepEqual(parseJobRequest({ action: 'inspect', image: 'debian', timeout_seconds: 5 }), {
      action: 'inspect',
      image: 'debian',
      timeout_seconds: 5,
    });
  });
  it('names the action field when the action is unknown, before any action schema', () => {
    assert.throws(
      () => parseJobRequest({ action: 'deploy', whatever: true }),
      (e: unknown) => e instanceof AppError && e.kind === 'invalid' && (e.details.fields as { path: string }[])[0]!.path === 'action',
    );
  });
  it('lists every bad field with its path', () => {
    assert.throws(
      () => parseJobRequest({ action: 'inspect', image: '-x', platform: 'windows', timeout_seconds: -1 }),
      (e: unknown) => {
        assert.ok(e instanceof AppError);
        assert.deepEqual((e.details.fields as { path: string }[]).map((f) => f.path).sort(), ['image', 'platform', 'timeout_seconds']);
        return true;
      },
    );
  });
});

describe('submitToBody (gRPC SubmitRequest → REST body)', () => {
  it("turns optimize's verify_commands into verify.commands", () => {
    assert.deepEqual(
      submitToBody({
        action: 'optimize',
        optimize: { dockerfile_inline: 'FROM x', verify: true, verify_commands: [{ argv: ['hello', 'x'] }] },
      }),
      { action: 'optimize', dockerfile_inline: 'FROM x', verify: { commands: [['hello', 'x']] } },
    );
    assert.deepEqual(submitToBody({ action: 'optimize', optimize: { dockerfile_inline: 'FROM x', verify: true, verify_commands: [] } }), {
      action: 'optimize',
      dockerfile_inline: 'FROM x',
      verify: true,
    });
  });

  it('takes the set oneof and drops proto3 defaults', () => {
    assert.deepEqual(
      submitToBody({
        action: 'inspect',
        inspect: { image: 'debian', platform: '' },
        callback_url: '',
        timeout_seconds: 0,
        idempotency_key: '',
      }),
      { action: 'inspect', image: 'debian' },
    );
    assert.deepEqual(submitToBody({ action: 'inspect', inspect: { image: 'debian', platform: 'linux/arm64' }, timeout_seconds: 9 }), {
      action: 'inspect',
      image: 'debian',
      platform: 'linux/arm64',
      timeout_seconds: 9,
    });
    // `optional bool platform_check`: set to false it is sent; unset it is absent.
    assert.deepEqual(
      submitToBody({ action: 'inspect', inspect: { image: 'debian', platform_check: false, _platform_check: 'platform_check' } }),
      { action: 'inspect', image: 'debian', platform_check: false },
    );
    assert.deepEqual(submitToBody({ action: 'inspect', inspect: { image: 'debian', platform_check: false } }), {
      action: 'inspect',
      image: 'debian',
    });
  });
});

describe('toEvent', () => {
  it('splits the stream entry into id, type, at and data', () => {
    assert.deepEqual(toEvent('1-0', ['type', 'state', 'data', '{"at":12.5,"state":"running"}']), {
      id: '1-0',
      type: 'state',
      at: 12.5,
      data: { state: 'running' },
    });
  });
});

describe('ArtifactStore.gc', () => {
  it('removes the artifacts of jobs past the retention and keeps the rest', async () => {
    const { writeFileSync, utimesSync, existsSync } = await import('node:fs');
    const { join } = await import('node:path');
    const { ArtifactStore } = await import('../../src/jobs/artifact-store.js');
    const root = tempDir('stv-artifacts-');
    const store = new ArtifactStore(root);
    const [oldId, newId] = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];
    for (const id of [oldId, newId]) writeFileSync(join(await store.prepare(id), 'trivy-report.json'), '{}');
    const old = new Date(Date.now() - 8 * 86400_000);
    utimesSync(join(root, oldId), old, old);
    assert.equal(await store.gc(7 * 86400), 1);
    assert.ok(!existsSync(join(root, oldId)) && existsSync(join(root, newId)));
  });
});

describe('submitToBody for a build pipeline', () => {
  it('maps scan options, sign and push_to', () => {
    const body = submitToBody({
      action: 'build',
      build: {
        dockerfile_inline: 'FROM scratch',
        tags: ['r.example/a:1'],
        scan: {
          scanners: [],
          severity: [],
          ignore_unfixed: true,
          policy: { _max_high: 'max_high', max_high: 0, ignore_unfixed: false, allow: [] },
        },
        sign: { key: '' },
        push_to: ['r.example/b:1'],
        platforms: [],
        build_args: {},
      },
    });
    assert.deepEqual(body, {
      action: 'build',
      dockerfile_inline: 'FROM scratch',
      tags: ['r.example/a:1'],
      scan: { ignore_unfixed: true, policy: { max_high: 0 } },
      sign: true,
      push_to: ['r.example/b:1'],
    });
  });
});
