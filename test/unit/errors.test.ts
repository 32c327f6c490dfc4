import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BadRequestException, NotFoundException, ServiceUnavailableException } from '@nestjs/common';
import { AppError } from '../../src/errors/app-error.js';
import { toErrorBody } from '../../src/api/api-exception.filter.js';

describe('toErrorBody', () => {
  it('keeps the code, message and details of an AppError, with the status of its kind', () => {
    const { status, body } = toErrorBody(new AppError('invalid', 'INVALID_PLATFORM', 'platform "x" is not os/arch', { field: 'platform' }));
    assert.equal(status, 400);
    assert.deepEqual(body, { error: { code: 'INVALID_PLATFORM', message: 'platform "x" is not os/arch', details: { field: 'platform' } } });
  });

  it('maps Nest exceptions by status', () => {
    assert.deepEqual(toErrorBody(new NotFoundException('no such job')).body.error, { code: 'NOT_FOUND', message: 'no such job', details: {} });
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
