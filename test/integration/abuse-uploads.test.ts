import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { Logger } from '@nestjs/common';
import request from 'supertest';
import {
  abortedUpload,
  bombParts,
  gzipToFile,
  manyEmptyFiles,
  startProbe,
  trickleUpload,
  type ProbeResult,
} from '../support/hostile-uploads.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { rawTar } from '../support/tar-fixtures.js';

/**
 * Issue 14: a tenant's hostile uploads get a clear 4xx within seconds, while /healthz
 * and another tenant's requests keep answering (probed every 20 ms; the longest answer
 * per upload is printed — under 100 ms on a quiet machine).
 */
const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
/**
 * What fails the test: a stall, i.e. work on the event loop that grows with the upload
 * (inflating 2 GiB in one go takes seconds). Not the quiet-machine figure: on a loaded
 * 2-core machine a probe was seen at 158 ms with no stall at all (issue 21).
 */
const PROBE_LIMIT_MS = 1_000;
const QUOTA = 10 * MiB;

describe('hostile context uploads', () => {
  let stack: Stack;
  let server: any;
  const work = mkdtempSync(join(tmpdir(), 'stv-abuse-'));
  const stateDir = mkdtempSync(join(tmpdir(), 'stv-abuse-state-'));
  const files = {
    zeros: join(work, 'zeros.gz'),
    bomb: join(work, 'bomb.tar.gz'),
    trailing: join(work, 'trailing.tar.gz'),
    many: join(work, 'many.tar.gz'),
  };
  const keys: Record<'hostile' | 'other' | 'quota', Record<string, string>> = { hostile: {}, other: {}, quota: {} };
  const stalls: string[] = [];
  const logged: { level: string; message: string }[] = [];
  const original = { warn: Logger.prototype.warn, error: Logger.prototype.error };

  before(async () => {
    // Made before any probing: zlib work in this process would stall the app's loop too.
    await gzipToFile(files.zeros, [{ zeros: 2 * GiB }]);
    await gzipToFile(files.bomb, bombParts(2 * GiB));
    await gzipToFile(files.trailing, [
      rawTar([{ name: 'Dockerfile', type: '0', content: 'FROM scratch\n' }]),
      Buffer.alloc(64 * MiB, 'trailing'),
    ]);
    await gzipToFile(files.many, [manyEmptyFiles(100_000)]);
    stack = await startStack({
      roles: { api: true, worker: false },
      overrides: {
        stateDir,
        contextMaxBytes: 32 * MiB,
        contextMaxExpandedBytes: GiB,
        contextUploadTimeoutMs: 4000,
        tenantContextQuotaBytes: QUOTA,
      },
    });
    server = stack.app.getHttpServer();
    for (const tenant of ['hostile', 'other', 'quota'] as const) {
      const { key } = (
        await request(server)
          .post('/v1/api-keys')
          .set(AUTH)
          .send({ tenant: `team-${tenant}`, scopes: ['jobs:read', 'jobs:write'] })
          .expect(201)
      ).body;
      keys[tenant] = { authorization: `Bearer ${key}` };
    }
    // Warm: the first request down each path (JIT, connections) is slow for its own reasons.
    const warm = startProbe([{ url: `${stack.base}/healthz` }, { url: `${stack.base}/v1/jobs?limit=1`, headers: keys.other }]);
    await sleep(300);
    await warm.stop();
    // And the upload path, whose first run (lazy loading, first fork) stalls once, by itself.
    await request(server)
      .post('/v1/contexts')
      .set(AUTH)
      .set('content-type', 'application/gzip')
      .send(gzipSync(rawTar([{ name: 'Dockerfile', type: '0', content: 'FROM scratch\n' }])))
      .expect(201);
    for (const level of ['warn', 'error'] as const) {
      Logger.prototype[level] = function (this: Logger, message: unknown, ...rest: unknown[]) {
        logged.push({ level, message: String(message) });
        return (original[level] as (...a: unknown[]) => void).call(this, message, ...rest);
      };
    }
  });
  after(async () => {
    Logger.prototype.warn = original.warn;
    Logger.prototype.error = original.error;
    console.log(`# longest /healthz or other-tenant answer per hostile upload: ${stalls.join('; ')}`);
    await stack?.stop();
    rmSync(work, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  /** Runs `upload` under the probe; the stall is recorded and must stay under the limit. */
  async function probed<T>(what: string, upload: () => Promise<T>): Promise<T> {
    const probe = startProbe([{ url: `${stack.base}/healthz` }, { url: `${stack.base}/v1/jobs?limit=1`, headers: keys.other }]);
    const started = Date.now();
    const loop = monitorEventLoopDelay({ resolution: 5 });
    loop.enable();
    let result: ProbeResult;
    let outcome: T;
    try {
      outcome = await upload();
    } finally {
      await sleep(100); // a stall right after the answer counts too
      result = await probe.stop();
    }
    loop.disable();
    stalls.push(
      `${what} ${result.maxMs.toFixed(1)} ms (${result.samples} probes, event-loop delay ` +
        `max ${(loop.max / 1e6).toFixed(1)} ms, answered in ${Date.now() - started} ms)`,
    );
    assert.deepEqual(result.failures, [], what);
    assert.ok(result.maxMs < PROBE_LIMIT_MS, `${what}: a probe took ${result.maxMs.toFixed(1)} ms; slowest: ${result.slowest.join(', ')}`);
    return outcome;
  }

  async function post(file: string, headers = keys.hostile) {
    const started = Date.now();
    const response = await fetch(`${stack.base}/v1/contexts`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/gzip' },
      body: readFileSync(file),
    });
    return { status: response.status, body: (await response.json()) as any, ms: Date.now() - started };
  }

  /** Nothing half-written: no upload temp file, no staging directory. */
  async function assertNoLeftovers() {
    const dir = join(stateDir, 'contexts');
    for (let i = 0; ; i++) {
      const left = readdirSync(dir).filter((name) => name.includes('.tmp-'));
      if (left.length === 0) return;
      if (i === 50) assert.fail(`left behind: ${left.join(', ')}`);
      await sleep(100);
    }
  }

  const cases: [string, keyof typeof files, number, string][] = [
    ['a gzip of 2 GiB of zeros (not a tar)', 'zeros', 400, 'INVALID_CONTEXT'],
    ['a gzip bomb (one 2 GiB file)', 'bomb', 413, 'CONTEXT_TOO_LARGE'],
    ['a tar followed by 64 MiB of trailing data', 'trailing', 400, 'INVALID_CONTEXT'],
    ['100 000 empty files', 'many', 413, 'CONTEXT_TOO_LARGE'],
  ];
  for (const [what, file, status, code] of cases) {
    it(`answers ${what} with ${status} ${code} within seconds`, async () => {
      const answer = await probed(what, () => post(files[file]));
      assert.equal(answer.status, status, JSON.stringify(answer.body));
      assert.equal(answer.body.error.code, code);
      // Within seconds (0.2–1.2 s typical, 4.3 s seen loaded): not after inflating it all.
      assert.ok(answer.ms < 30_000, `answered after ${answer.ms} ms`);
      await assertNoLeftovers();
    });
  }

  it('answers uploads that trickle in with 408 UPLOAD_TIMEOUT, and a fifth at once with 429', async () => {
    const started = Date.now();
    const small = gzipSync(rawTar([{ name: 'Dockerfile', type: '0', content: 'FROM scratch\n# other\n' }]));
    const [answers, fifth, other] = await probed('four slow-loris uploads', async () => {
      const trickles = Promise.all([1, 2, 3, 4].map(() => trickleUpload(`${stack.base}/v1/contexts`, keys.hostile)));
      await sleep(500);
      const fifth = await request(server).post('/v1/contexts').set(keys.hostile).set('content-type', 'application/gzip').send(small);
      const other = await request(server).post('/v1/contexts').set(keys.other).set('content-type', 'application/gzip').send(small);
      return [await trickles, fifth, other] as const;
    });
    for (const answer of answers) {
      assert.equal(answer.status, 408, JSON.stringify(answer.body));
      assert.equal(answer.body.error.code, 'UPLOAD_TIMEOUT');
    }
    assert.equal(fifth.status, 429, JSON.stringify(fifth.body));
    assert.equal(fifth.body.error.code, 'TOO_MANY_UPLOADS');
    assert.equal(other.status, 201, JSON.stringify(other.body));
    // The 4 s upload limit ended them (4.1 s typical), not a later one.
    assert.ok(Date.now() - started < 30_000, `${Date.now() - started} ms`);
    await assertNoLeftovers();
  });

  it('answers a body without content-length that runs past the upload limit with 413, not a reset', async () => {
    const answer = await probed('an endless chunked body', () =>
      trickleUpload(`${stack.base}/v1/contexts`, keys.hostile, 1, Buffer.alloc(MiB, 7)),
    );
    assert.equal(answer.status, 413, JSON.stringify(answer.body));
    assert.equal(answer.body.error.code, 'CONTEXT_TOO_LARGE');
    await assertNoLeftovers();
  });

  it('logs a client that gives up mid-upload as such, not as an internal error', async () => {
    await abortedUpload(`${stack.base}/v1/contexts`, keys.hostile, Buffer.alloc(64 * 1024, 1));
    for (let i = 0; i < 50 && !logged.some((l) => l.message.includes('closed the connection')); i++) await sleep(100);
    assert.ok(
      logged.some((l) => l.level === 'warn' && l.message.includes('closed the connection')),
      JSON.stringify(logged),
    );
    assert.deepEqual(
      logged.filter((l) => l.level === 'error'),
      [],
    );
    await assertNoLeftovers();
  });

  it('holds a tenant to its context quota, and only that tenant', async () => {
    const context = (n: number) =>
      gzipSync(
        rawTar([
          { name: 'Dockerfile', type: '0', content: 'FROM scratch\n' },
          { name: 'data', type: '0', content: String(n).repeat(6 * MiB) },
        ]),
      );
    const upload = (body: Buffer, auth: Record<string, string>) =>
      request(server).post('/v1/contexts').set(auth).set('content-type', 'application/gzip').send(body);
    const first = await upload(context(1), keys.quota);
    assert.equal(first.status, 201, JSON.stringify(first.body));
    const second = await upload(context(2), keys.quota);
    assert.equal(second.status, 429, JSON.stringify(second.body));
    assert.equal(second.body.error.code, 'CONTEXT_QUOTA_EXCEEDED');
    assert.equal(second.body.error.details.quota_bytes, QUOTA);
    // The same bytes again cost nothing more; another tenant has its own quota.
    assert.equal((await upload(context(1), keys.quota)).status, 200);
    assert.equal((await upload(context(2), keys.other)).status, 201);
    // Two at once cannot both spend the same remainder.
    const { key } = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'team-parallel', scopes: ['jobs:write'] })
        .expect(201)
    ).body;
    const both = await Promise.all([3, 4].map((n) => upload(context(n), { authorization: `Bearer ${key}` })));
    assert.deepEqual(both.map((r) => r.status).sort(), [201, 429], JSON.stringify(both.map((r) => r.body)));
    await assertNoLeftovers();
  });
});
