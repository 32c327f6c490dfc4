import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { AUTH, startStack, type Stack } from '../support/stack.js';

type Case = [name: string, send: (server: any) => request.Test, status: number, code: string, path?: string];

const json = (body: unknown) => (server: any) =>
  request(server)
    .post('/v1/jobs')
    .set(AUTH)
    .send(body as object);
const get =
  (url: string, headers: Record<string, string> = AUTH) =>
  (server: any) =>
    request(server).get(url).set(headers);
const UNKNOWN = '00000000-0000-4000-8000-000000000000';
const inspect = { action: 'inspect', image: 'debian:bookworm-slim' };

const CASES: Case[] = [
  ['no token', (s) => request(s).post('/v1/jobs').send(inspect), 401, 'UNAUTHORIZED'],
  [
    'wrong token',
    (s) => request(s).post('/v1/jobs').set('authorization', 'Bearer wrong-token-0123456789').send(inspect),
    401,
    'UNAUTHORIZED',
  ],
  [
    'not JSON',
    (s) => request(s).post('/v1/jobs').set(AUTH).set('content-type', 'text/plain').send('action=inspect'),
    415,
    'UNSUPPORTED_MEDIA_TYPE',
  ],
  [
    'malformed JSON',
    (s) => request(s).post('/v1/jobs').set(AUTH).set('content-type', 'application/json').send('{"action":'),
    400,
    'INVALID_REQUEST',
  ],
  [
    'empty JSON body',
    (s) => request(s).post('/v1/jobs').set(AUTH).set('content-type', 'application/json').send(''),
    400,
    'INVALID_REQUEST',
  ],
  ['array body', json([inspect]), 400, 'VALIDATION_FAILED', 'body'],
  ['missing action', json({ image: 'debian' }), 400, 'VALIDATION_FAILED', 'action'],
  ['unknown action', json({ action: 'deploy', image: 'debian' }), 400, 'VALIDATION_FAILED', 'action'],
  ['inspect without image', json({ action: 'inspect' }), 400, 'VALIDATION_FAILED', 'image'],
  ['image that looks like an option', json({ action: 'inspect', image: '--output=/etc/passwd' }), 400, 'VALIDATION_FAILED', 'image'],
  ['image with a space', json({ action: 'inspect', image: 'debian bookworm' }), 400, 'VALIDATION_FAILED', 'image'],
  ['image with a short digest', json({ action: 'inspect', image: 'debian@sha256:abc123' }), 400, 'VALIDATION_FAILED', 'image'],
  ['image with upper-case repository', json({ action: 'inspect', image: 'Library/Debian' }), 400, 'VALIDATION_FAILED', 'image'],
  ['image that traverses', json({ action: 'inspect', image: 'reg.example:5000/../../etc' }), 400, 'VALIDATION_FAILED', 'image'],
  ['platform without arch', json({ ...inspect, platform: 'linux' }), 400, 'VALIDATION_FAILED', 'platform'],
  ['timeout zero', json({ ...inspect, timeout_seconds: 0 }), 400, 'VALIDATION_FAILED', 'timeout_seconds'],
  ['timeout over a day', json({ ...inspect, timeout_seconds: 1e9 }), 400, 'VALIDATION_FAILED', 'timeout_seconds'],
  ['timeout as a string', json({ ...inspect, timeout_seconds: '10' }), 400, 'VALIDATION_FAILED', 'timeout_seconds'],
  ['callback not http(s)', json({ ...inspect, callback_url: 'ftp://example.com/hook' }), 400, 'VALIDATION_FAILED', 'callback_url'],
  ['unknown field', json({ ...inspect, registry_password: 'hunter2' }), 400, 'VALIDATION_FAILED'],
  [
    'body over the limit',
    (s) =>
      request(s)
        .post('/v1/jobs')
        .set(AUTH)
        .set('content-type', 'application/json')
        .send(JSON.stringify({ ...inspect, pad: 'x'.repeat(11 * 1024 * 1024) })),
    413,
    'PAYLOAD_TOO_LARGE',
  ],
  [
    'idempotency key with spaces',
    (s) => request(s).post('/v1/jobs').set(AUTH).set('idempotency-key', 'a b').send(inspect),
    400,
    'VALIDATION_FAILED',
  ],
  ['unknown job', get(`/v1/jobs/${UNKNOWN}`), 404, 'NOT_FOUND'],
  ['malformed job id', get('/v1/jobs/..%2F..%2Fetc'), 404, 'NOT_FOUND'],
  ['cancel unknown job', (s) => request(s).post(`/v1/jobs/${UNKNOWN}/cancel`).set(AUTH), 404, 'NOT_FOUND'],
  ['limit zero', get('/v1/jobs?limit=0'), 400, 'VALIDATION_FAILED', 'limit'],
  ['limit not a number', get('/v1/jobs?limit=ten'), 400, 'VALIDATION_FAILED', 'limit'],
  ['unknown state filter', get('/v1/jobs?state=done'), 400, 'VALIDATION_FAILED', 'state'],
  ['forged cursor', get('/v1/jobs?cursor=bm90LWEtY3Vyc29y'), 400, 'VALIDATION_FAILED', 'cursor'],
  ['unknown query parameter', get('/v1/jobs?sort=asc'), 400, 'VALIDATION_FAILED'],
  ['events of unknown job', get(`/v1/jobs/${UNKNOWN}/events`), 404, 'NOT_FOUND'],
  [
    'events with a bad Last-Event-ID',
    get(`/v1/jobs/${UNKNOWN}/events`, { ...AUTH, 'last-event-id': 'yesterday' }),
    400,
    'VALIDATION_FAILED',
  ],
  // Redis stream ids are two unsigned 64-bit numbers; a larger one was a 500 from XRANGE (found by the fuzzer).
  [
    'events with a Last-Event-ID past 64 bits',
    get(`/v1/jobs/${UNKNOWN}/events`, { ...AUTH, 'last-event-id': '1-18446744073709551616' }),
    400,
    'VALIDATION_FAILED',
  ],
  ['events with follow=maybe', get(`/v1/jobs/${UNKNOWN}/events?follow=maybe`), 400, 'VALIDATION_FAILED', 'follow'],
  ['sync inspect without ref', get('/v1/images/inspect'), 400, 'VALIDATION_FAILED', 'ref'],
  ['sync inspect of an option', get('/v1/images/inspect?ref=--help'), 400, 'VALIDATION_FAILED', 'ref'],
  ['unknown route', get('/v1/nothing-here'), 404, 'NOT_FOUND'],
];

describe(`${CASES.length} bad inputs, each a clear 4xx in the one error shape`, () => {
  let stack: Stack;
  before(async () => {
    stack = await startStack({ roles: { api: true, worker: false } });
  });
  after(async () => stack?.stop());

  for (const [name, send, status, code, path] of CASES) {
    it(`${name} → ${status} ${code}`, async () => {
      const res = await send(stack.app.getHttpServer());
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.deepEqual(Object.keys(res.body).sort(), ['error', 'request_id']);
      assert.deepEqual(Object.keys(res.body.error).sort(), ['code', 'details', 'message']);
      assert.equal(res.body.error.code, code);
      assert.equal(res.body.request_id, res.headers['x-request-id']);
      assert.doesNotMatch(JSON.stringify(res.body), /\bat .*\.js:\d+|hunter2/, 'no stack trace, no echoed secret');
      if (path)
        assert.ok(
          res.body.error.details.fields.some((f: { path: string }) => f.path === path),
          `names field ${path}: ${JSON.stringify(res.body.error.details)}`,
        );
    });
  }

  it('an api with no signing key (no STEVEDORE_SIGNING_KEYS_FILE) started, and says how to give it one', async () => {
    for (const action of ['sign', 'verify']) {
      const res = await json({ action, image: 'team/app:1', registry: stack.registry.address })(stack.app.getHttpServer());
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'VALIDATION_FAILED');
      const [field] = res.body.error.details.fields;
      assert.equal(field.path, 'key');
      assert.match(field.message, /no signing keys are configured/);
      assert.match(field.message, /STEVEDORE_SIGNING_KEYS_FILE/);
      assert.match(field.message, /cosign generate-key-pair/);
    }
  });

  it('wrote no job for any of them', async () => {
    const list = await request(stack.app.getHttpServer()).get('/v1/jobs').set(AUTH).expect(200);
    assert.deepEqual(list.body.items, []);
  });
});
