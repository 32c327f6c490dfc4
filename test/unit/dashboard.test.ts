import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSameOrigin, safeNext } from '../../src/ui/dashboard-auth.js';
import { toJobView } from '../../src/ui/job-view.js';
import { readCookie, sessionCookie, SessionStore, type SessionRedis } from '../../src/ui/session.js';
import type { JobRecord } from '../../src/jobs/job-types.js';

describe('dashboard sessions', () => {
  /** get/set/del over a Map: what SessionStore asks of Redis (TTLs are Redis's business). */
  const fakeRedis = () => {
    const data = new Map<string, string>();
    const redis = {
      data,
      get: async (k: string) => data.get(k) ?? null,
      set: async (k: string, v: string) => (data.set(k, v), 'OK'),
      del: async (k: string) => Number(data.delete(k)),
      eval: async () => 0,
    };
    return redis as typeof redis & SessionRedis;
  };

  it('verifies its own sessions, stores only a hash of the id, and forgets a revoked one', async () => {
    const redis = fakeRedis();
    const store = new SessionStore(redis, 'admin-token-one');
    const session = (await store.issue())!;
    assert.match(session, /^[A-Za-z0-9_-]{43}$/);
    assert.ok(await store.verify(session));
    assert.equal(
      [...redis.data.keys()].some((k) => k.includes(session)),
      false,
      'the id itself is not a Redis key',
    );
    assert.equal(
      [...redis.data.values()].some((v) => v.includes('admin-token-one')),
      false,
    );
    await store.revoke(session);
    assert.equal(await store.verify(session), false);
    assert.equal(redis.data.size, 0);
  });

  it('refuses unknown and malformed sessions, and sessions of a rotated admin token (deleting them)', async () => {
    const redis = fakeRedis();
    const session = (await new SessionStore(redis, 'admin-token-one').issue())!;
    const other = session.startsWith('A') ? `B${session.slice(1)}` : `A${session.slice(1)}`;
    const store = new SessionStore(redis, 'admin-token-one');
    for (const bad of [other, `${session}.x`, '', undefined]) assert.equal(await store.verify(bad), false, String(bad));
    assert.equal(await new SessionStore(redis, 'admin-token-two').verify(session), false);
    assert.equal(redis.data.size, 0, 'the rotated-away session is gone');
    assert.equal(await store.verify(session), false);
    // Without an admin token nobody is the operator.
    assert.equal(await new SessionStore(redis, undefined).issue(), undefined);
  });

  it('reads and writes the cookie with HttpOnly and SameSite=Strict', () => {
    assert.equal(readCookie('a=1; stv_session=abc.def; b=2', 'stv_session'), 'abc.def');
    assert.equal(readCookie('xstv_session=1', 'stv_session'), undefined);
    const cookie = sessionCookie('v', 60, false);
    assert.match(cookie, /^stv_session=v; Path=\/; Max-Age=60; HttpOnly; SameSite=Strict$/);
    assert.match(sessionCookie('v', 60, true), /; Secure$/);
  });
});

describe('dashboard request checks', () => {
  it('keeps `next` on this site', () => {
    assert.equal(safeNext('/ui/jobs/1'), '/ui/jobs/1');
    for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '/a b', 42])
      assert.equal(safeNext(bad), '/admin/queues', String(bad));
  });

  it('refuses cross-site posts and lets non-browser clients through', () => {
    const req = (headers: Record<string, string>) => ({ method: 'POST', headers: { host: '127.0.0.1:8080', ...headers } });
    assert.ok(isSameOrigin(req({ origin: 'http://127.0.0.1:8080', 'sec-fetch-site': 'same-origin' })));
    assert.ok(isSameOrigin(req({})));
    assert.equal(isSameOrigin(req({ origin: 'http://evil.example' })), false);
    assert.equal(isSameOrigin(req({ 'sec-fetch-site': 'cross-site' })), false);
    assert.equal(isSameOrigin(req({ origin: 'null' })), false);
  });
});

describe('job view', () => {
  const job = (action: string, request: object, result: object | null) =>
    ({
      id: 'j',
      tenant: 't',
      action,
      state: 'succeeded',
      request,
      result,
      error: null,
      created_at: 'c',
      started_at: 's',
      finished_at: 'f',
      attempts: 1,
      timeout_seconds: 60,
    }) as unknown as JobRecord;

  it('takes the severity counts of a scan and the layers of its image', () => {
    const view = toJobView(
      job(
        'scan',
        { action: 'scan', image: 'r/a:1' },
        {
          summary: { critical: 1, high: 2, medium: 0, low: 3, unknown: 0, fixable: 2 },
          image_info: {
            layers: [
              { digest: 'sha256:a', size_bytes: 10, created_by: 'ADD x' },
              { digest: 'sha256:b', size_bytes: 20, created_by: null },
            ],
          },
          vulnerabilities: [],
        },
      ),
    );
    assert.deepEqual(view.severities, { critical: 1, high: 2, medium: 0, low: 3, unknown: 0 });
    assert.deepEqual(view.layers, [
      { digest: 'sha256:a', size_bytes: 10, created_by: 'ADD x' },
      { digest: 'sha256:b', size_bytes: 20, created_by: null },
    ]);
    assert.equal(view.fixable, 2);
    assert.equal(view.image, 'r/a:1');
  });

  it('has no charts for a job without a result, and names a build by its first tag', () => {
    const view = toJobView(job('build', { action: 'build', tags: ['r/b:2'] }, null));
    assert.equal(view.severities, null);
    assert.equal(view.layers, null);
    assert.equal(view.image, 'r/b:2');
  });
});
