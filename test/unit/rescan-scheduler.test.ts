import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { RescanScheduler } from '../../src/catalogue/rescan-scheduler.js';
import type { ImageRecord } from '../../src/catalogue/catalogue-record.js';
import type { JobService } from '../../src/jobs/job.service.js';

/** The few string commands the scheduler uses, in memory. */
function fakeRedis(): Redis & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    get: (k: string) => Promise.resolve(data.get(k) ?? null),
    set: (k: string, v: string, ...opts: string[]) => {
      if (opts.includes('NX') && data.has(k)) return Promise.resolve(null);
      data.set(k, v);
      return Promise.resolve('OK');
    },
    del: (k: string) => Promise.resolve(data.delete(k) ? 1 : 0),
  } as unknown as Redis & { data: Map<string, string> };
}

const record = (digest: string, db: string | null, sbom = true): ImageRecord =>
  ({
    digest,
    repository: '127.0.0.1:5000/team/app',
    latest_scan: {
      job_id: `job-${digest}`,
      scanned_at: '2026-12-01T00:00:00.000Z',
      db_updated_at: db,
      reports: ['trivy-report.json'],
      platforms: ['linux/amd64'],
    },
    sbom: sbom
      ? { job_id: `sbom-${digest}`, artifact: 'sbom.cdx.json', platforms: [{ platform: 'linux/amd64', digest, artifact: 'sbom.cdx.json' }] }
      : null,
  }) as unknown as ImageRecord;

function setup(records: { tenant: string; record: ImageRecord }[], db: string | undefined) {
  const redis = fakeRedis();
  const submitted: { request: unknown; tenant: string; options: Record<string, unknown> }[] = [];
  const jobs = {
    submit: (request: unknown, tenant: string, options: Record<string, unknown>) => {
      submitted.push({ request, tenant, options });
      return Promise.resolve({ job: {}, created: true });
    },
  } as unknown as Pick<JobService, 'submit'>;
  const catalogue = {
    async *scannedRecords() {
      for (const r of records) yield r;
    },
  };
  const logs: string[] = [];
  const scheduler = new RescanScheduler(
    redis,
    catalogue,
    jobs,
    { updatedAt: () => Promise.resolve(db) },
    { log: (m) => logs.push(m), warn: (m) => logs.push(m) },
    { intervalMs: 60_000 },
  );
  return { redis, submitted, scheduler, logs };
}

const NEW_DB = '2026-12-03T00:00:00Z';

describe('rescan scheduler', () => {
  it('queues every digest scanned with another DB, in the background lane, with its previous scan and SBOMs', async () => {
    const { submitted, scheduler, redis } = setup(
      [
        { tenant: 'team-a', record: record('sha256:' + 'a'.repeat(64), '2026-12-01T00:00:00Z') },
        { tenant: 'team-a', record: record('sha256:' + 'b'.repeat(64), NEW_DB) },
        { tenant: 'team-b', record: record('sha256:' + 'c'.repeat(64), null, false) },
      ],
      NEW_DB,
    );
    assert.equal(await scheduler.check(), 2);
    assert.deepEqual(
      submitted.map((s) => [s.tenant, (s.request as { image: string }).image]),
      [
        ['team-a', `127.0.0.1:5000/team/app@sha256:${'a'.repeat(64)}`],
        ['team-b', `127.0.0.1:5000/team/app@sha256:${'c'.repeat(64)}`],
      ],
    );
    const first = submitted[0]!;
    assert.deepEqual(first.request, {
      action: 'scan',
      image: `127.0.0.1:5000/team/app@sha256:${'a'.repeat(64)}`,
      platform: 'linux/amd64',
      scanners: ['vuln'],
    });
    assert.equal(first.options.lane, 'background');
    assert.equal(first.options.idempotencyKey, `rescan:sha256:${'a'.repeat(64)}:${NEW_DB}`);
    const origin = first.options.origin as { previous: { job_id: string }; sbom: { job_id: string } | null; db_updated_at: string };
    assert.equal(origin.previous.job_id, `job-sha256:${'a'.repeat(64)}`);
    assert.equal(origin.sbom?.job_id, `sbom-sha256:${'a'.repeat(64)}`);
    assert.equal(origin.db_updated_at, NEW_DB);
    assert.equal((submitted[1]!.options.origin as { sbom: unknown }).sbom, null, 'no stored SBOM: the image is scanned');
    assert.equal(redis.data.get('stv:rescan:db'), NEW_DB);
    assert.equal(redis.data.has('stv:rescan:lock'), false, 'the lock is released');
  });

  it('does nothing again for the same DB, nor without a DB, nor while another scheduler holds the lock', async () => {
    const records = [{ tenant: 't', record: record('sha256:' + 'd'.repeat(64), 'old') }];
    const same = setup(records, NEW_DB);
    same.redis.data.set('stv:rescan:db', NEW_DB);
    assert.equal(await same.scheduler.check(), 0);
    const none = setup(records, undefined);
    assert.equal(await none.scheduler.check(), 0);
    const locked = setup(records, NEW_DB);
    locked.redis.data.set('stv:rescan:lock', 'someone-else');
    assert.equal(await locked.scheduler.check(), 0);
    assert.equal(locked.redis.data.get('stv:rescan:lock'), 'someone-else', "another scheduler's lock is left alone");
    assert.equal(same.submitted.length + none.submitted.length + locked.submitted.length, 0);
  });

  it('a failed pass keeps the DB unmarked, so the next check queues again', async () => {
    const { scheduler, redis } = setup([{ tenant: 't', record: record('sha256:' + 'e'.repeat(64), 'old') }], NEW_DB);
    const failing = scheduler as unknown as { jobs: { submit: () => Promise<never> } };
    failing.jobs = { submit: () => Promise.reject(new Error('redis away')) };
    await assert.rejects(scheduler.check(), /redis away/);
    assert.equal(redis.data.has('stv:rescan:db'), false);
    assert.equal(redis.data.has('stv:rescan:lock'), false);
  });
});
