import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatImageReference, InvalidReferenceError, isLoopbackRegistry, parseImageReference } from '../../src/oci/references.js';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseImageReference', () => {
  const cases: [string, string][] = [
    ['debian', 'docker.io/library/debian:latest'],
    ['debian:bookworm-slim', 'docker.io/library/debian:bookworm-slim'],
    ['team/app:1.2', 'docker.io/team/app:1.2'],
    ['index.docker.io/library/alpine', 'docker.io/library/alpine:latest'],
    ['127.0.0.1:5000/multi/app:1', '127.0.0.1:5000/multi/app:1'],
    ['localhost/app', 'localhost/app:latest'],
    ['ghcr.io/org/tool@' + D, 'ghcr.io/org/tool@' + D],
    ['reg.example:443/a/b/c:v1@' + D, 'reg.example:443/a/b/c:v1@' + D],
  ];
  for (const [input, expected] of cases)
    it(`${input} → ${expected}`, () => assert.equal(formatImageReference(parseImageReference(input)), expected));

  const bad = [
    '',
    '-rf',
    '--help',
    'debian bookworm',
    'debian\n',
    'Debian',
    'debian@sha256:abc',
    'debian@md5:' + 'a'.repeat(32) + 'Z!',
    'reg.example:5000/../etc',
    'a//b',
    'debian:-tag',
    'debian:' + 'x'.repeat(129),
    'bad_host.example:5000:1/a',
  ];
  for (const input of bad)
    it(`refuses ${JSON.stringify(input)}`, () => assert.throws(() => parseImageReference(input), InvalidReferenceError));
});

describe('isLoopbackRegistry', () => {
  it('knows loopback hosts', () => {
    assert.ok(isLoopbackRegistry('127.0.0.1:5000'));
    assert.ok(isLoopbackRegistry('localhost:5000'));
    assert.ok(isLoopbackRegistry('[::1]:5000'));
    assert.ok(!isLoopbackRegistry('registry.example:5000'));
    assert.ok(!isLoopbackRegistry('10.0.0.1:5000'));
  });
});
