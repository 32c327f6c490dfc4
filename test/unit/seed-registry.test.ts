import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseJobRequest } from '../../src/admission/parse-request.js';
import { AppError } from '../../src/errors/app-error.js';
import { loadSync } from '@grpc/proto-loader';
import { PROTO_ROOT, STEVEDORE_PROTOS } from '../../src/grpc/grpc-options.js';
import { submitToBody } from '../../src/grpc/jobs.grpc-controller.js';
import { ACTION_TABLE } from '../../src/jobs/actions.js';

const fieldsOf = (e: unknown) => {
  assert.ok(e instanceof AppError && e.kind === 'invalid', String(e));
  return e.details.fields as { path: string; message: string }[];
};

describe("the seed's registry on inspect, scan, sign and verify", () => {
  for (const action of ['inspect', 'scan', 'sign', 'verify'] as const) {
    it(`${action}: joins registry and an image given without one, and keeps no registry field`, () => {
      const request = parseJobRequest({ action, image: 'team/app:1', registry: '127.0.0.1:5000' });
      assert.deepEqual(request, { action, image: '127.0.0.1:5000/team/app:1' });
      // What admission checks (repositories, the registry guard) is the full reference.
      assert.deepEqual(
        ACTION_TABLE[action].images(request as never).map((u) => [u.path, u.reference]),
        [['image', '127.0.0.1:5000/team/app:1']],
      );
    });
  }

  it('keeps a digest and a one-component name as given under the registry', () => {
    const digest = `sha256:${'a'.repeat(64)}`;
    assert.equal(
      (parseJobRequest({ action: 'verify', image: `app@${digest}`, registry: 'reg.example:443' }) as { image: string }).image,
      `reg.example:443/app@${digest}`,
    );
    assert.equal(
      (parseJobRequest({ action: 'scan', image: 'app', registry: 'localhost:5000' }) as { image: string }).image,
      'localhost:5000/app',
    );
  });

  it('accepts an image that names the same registry, and leaves it alone', () => {
    assert.deepEqual(parseJobRequest({ action: 'inspect', image: '127.0.0.1:5000/team/app:1', registry: '127.0.0.1:5000' }), {
      action: 'inspect',
      image: '127.0.0.1:5000/team/app:1',
    });
    assert.equal(
      (parseJobRequest({ action: 'inspect', image: 'index.docker.io/library/debian', registry: 'docker.io' }) as { image: string }).image,
      'index.docker.io/library/debian',
    );
  });

  it('refuses an image that names another registry, saying which', () => {
    assert.throws(
      () => parseJobRequest({ action: 'sign', image: 'ghcr.io/team/app:1', registry: '127.0.0.1:5000' }),
      (e: unknown) => {
        const [field] = fieldsOf(e);
        assert.equal(field!.path, 'registry');
        assert.match(field!.message, /ghcr\.io/);
        assert.match(field!.message, /127\.0\.0\.1:5000/);
        return true;
      },
    );
  });

  it('refuses a registry Docker would read as a repository component, and one that is not a host', () => {
    assert.throws(
      () => parseJobRequest({ action: 'inspect', image: 'app:1', registry: 'team' }),
      (e: unknown) => fieldsOf(e)[0]!.path === 'registry' && /not a registry host/.test(fieldsOf(e)[0]!.message),
    );
    assert.throws(
      () => parseJobRequest({ action: 'scan', image: 'app:1', registry: 'http://reg.example' }),
      (e: unknown) => fieldsOf(e)[0]!.path === 'registry',
    );
  });

  it("leaves push's registry (the destination) and build's (registry + image) as they were", () => {
    const push = parseJobRequest({ action: 'push', image: '127.0.0.1:5000/team/app:1', registry: 'reg.example' });
    assert.deepEqual(push, { action: 'push', image: '127.0.0.1:5000/team/app:1', registry: 'reg.example' });
  });

  it('passes registry through from gRPC', () => {
    const def = loadSync(STEVEDORE_PROTOS, { keepCase: true, includeDirs: [PROTO_ROOT] });
    for (const message of ['InspectJob', 'ScanJob', 'SignJob', 'VerifyJob']) {
      const fields = (def[`stevedore.v1.${message}`] as unknown as { type: { field: { name: string }[] } }).type.field;
      assert.ok(
        fields.some((f) => f.name === 'registry'),
        `${message} has registry`,
      );
    }
    assert.deepEqual(submitToBody({ action: 'verify', verify: { image: 'team/app:1', key: '', registry: '127.0.0.1:5000' } }), {
      action: 'verify',
      image: 'team/app:1',
      registry: '127.0.0.1:5000',
    });
  });
});
