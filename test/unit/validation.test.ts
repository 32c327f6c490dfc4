import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { AppError } from '../../src/errors/app-error.js';
import { validate } from '../../src/errors/validation.js';
import { requestPolicySchema } from '../../src/jobs/request-fields.js';

const fieldsOf = (schema: z.ZodType, value: unknown) => {
  try {
    validate(schema, value, 'body');
  } catch (err) {
    assert.ok(err instanceof AppError);
    return (err.details as { fields: { path: string; message: string }[] }).fields;
  }
  assert.fail('validated');
};

describe('validation errors of a union (a policy name or an inline policy)', () => {
  const body = z.object({ policy: requestPolicySchema }).strict();
  it("names the inner field of the branch the value was meant for, not the union's 'Invalid input'", () => {
    const allow = Array.from({ length: 501 }, (_, i) => ({ id: `CVE-2024-${i}`, reason: 'r' }));
    assert.deepEqual(
      fieldsOf(body, { policy: { allow } }).map((f) => f.path),
      ['policy.allow'],
    );
    assert.match(fieldsOf(body, { policy: 'Not A Name' })[0]!.message, /a policy name/);
  });
  it('keeps the union issue when the value fits no branch by type', () => {
    assert.deepEqual(
      fieldsOf(body, { policy: 42 }).map((f) => f.path),
      ['policy'],
    );
  });
});
