import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isSameOrigin, safeNext } from '../../src/ui/dashboard-auth.js';
import { toJobView } from '../../src/ui/job-view.js';
import { readCookie, sessionCookie, SessionSigner } from '../../src/ui/session.js';
import type { JobRecord } from '../../src/jobs/job-types.js';

describe('dashboard sessions', () => {
  const signer = new SessionSigner('admin-token-one');

  it('verifies its own sessions until they expire', () => {
    const now = 1_800_000_000;
    const session = signer.issue(now, 60);
    assert.ok(signer.verify(session, now + 59));
    assert.equal(signer.verify(session, now + 60), false);
  });

  it('refuses tampered sessions and sessions signed for another admin token', () => {
    const session = signer.issue();
    const [body, mac] = session.split('.');
    const forged = Buffer.from(JSON.stringify({ sub: 'admin', exp: 9_999_999_999 })).toString('base64url');
    assert.equal(signer.verify(`${forged}.${mac}`), false);
    // The first character: it carries 6 bits of the MAC (the last one's low bits are padding,
    // which decoders ignore), and the replacement differs from it every time.
    assert.equal(signer.verify(`${body}.${mac!.startsWith('A') ? 'B' : 'A'}${mac!.slice(1)}`), false);
    assert.equal(signer.verify(`${session}.x`), false);
    assert.equal(signer.verify(''), false);
    assert.equal(new SessionSigner('admin-token-two').verify(session), false);
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
