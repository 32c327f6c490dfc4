import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { AppError } from '../../src/errors/app-error.js';
import { status } from '@grpc/grpc-js';
import { toErrorBody } from '../../src/api/api-exception.filter.js';
import { toGrpcError } from '../../src/grpc/grpc-errors.js';
import { JobOperationError } from '../../src/jobs/job.service.js';

describe('toErrorBody', () => {
  it('keeps the code, message and details of an AppError, with the status of its kind', () => {
    const { status, body } = toErrorBody(new AppError('invalid', 'INVALID_PLATFORM', 'platform "x" is not os/arch', { field: 'platform' }));
    assert.equal(status, 400);
    assert.deepEqual(body, { error: { code: 'INVALID_PLATFORM', message: 'platform "x" is not os/arch', details: { field: 'platform' } } });
  });

  it('maps Nest exceptions by status', () => {
    assert.deepEqual(toErrorBody(new NotFoundException('no such job')).body.error, {
      code: 'NOT_FOUND',
      message: 'no such job',
      details: {},
    });
    assert.equal(toErrorBody(new BadRequestException(['a must be set', 'b is wrong'])).body.error.message, 'a must be set; b is wrong');
  });

  it('names the failing parts of a readiness check', () => {
    const result = { status: 'error', info: { buildkit: { status: 'up' } }, error: { redis: { status: 'down' } }, details: {} };
    const { status, body } = toErrorBody(new ServiceUnavailableException(result));
    assert.equal(status, 503);
    assert.equal(body.error.code, 'NOT_READY');
    assert.equal(body.error.message, 'not ready: redis unavailable');
  });

  it('keeps client errors raised by Fastify (bad JSON) as 4xx', () => {
    const fastifyError = Object.assign(new Error('Body is not valid JSON'), { statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON' });
    const { status, body } = toErrorBody(fastifyError);
    assert.equal(status, 400);
    assert.equal(body.error.details.cause, 'FST_ERR_CTP_INVALID_JSON');
  });

  it('hides everything about an unexpected error', () => {
    const { status, body } = toErrorBody(new TypeError('cannot read properties of undefined (secret path /etc/x)'));
    assert.equal(status, 500);
    assert.deepEqual(body, { error: { code: 'INTERNAL', message: 'internal error; see the server log', details: {} } });
  });
});

describe('one error, mapped once per transport', () => {
  it('answers job refusals with the same HTTP and gRPC status as before the AppError', () => {
    const cases: [JobOperationError, number, status][] = [
      [new JobOperationError('NOT_FOUND', 'no job x'), 404, status.NOT_FOUND],
      [new JobOperationError('IDEMPOTENCY_CONFLICT', 'reused', { job_id: 'j' }), 409, status.ALREADY_EXISTS],
      [new JobOperationError('JOB_FINISHED', 'job j already succeeded', { state: 'succeeded' }), 409, status.FAILED_PRECONDITION],
      [new JobOperationError('QUEUE_UNAVAILABLE', 'could not queue the job'), 503, status.UNAVAILABLE],
    ];
    for (const [err, http, grpc] of cases) {
      const { status: got, body } = toErrorBody(err);
      assert.equal(got, http, err.code);
      assert.deepEqual(body.error, { code: err.code, message: err.message, details: err.details });
      assert.deepEqual(toGrpcError(err), { code: grpc, message: `${err.code}: ${err.message}` });
    }
  });

  it('leaves anything that is not an AppError to the internal-error answer', () => {
    assert.equal(toGrpcError(new Error('boom')), undefined);
    assert.equal(toErrorBody(new Error('boom')).status, 500);
  });
});
