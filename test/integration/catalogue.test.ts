import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import request from 'supertest';
import type { StartedTestContainer } from 'testcontainers';
import type { CatalogueUpdate } from '../../src/catalogue/catalogue-record.js';
import { CatalogueStore, InvalidCatalogueCursorError, MAX_EXAMINED, MAX_REFERENCES } from '../../src/catalogue/catalogue-store.js';
import { runProcess } from '../../src/engines/process-runner.js';
import { waitForJob } from '../support/build-helpers.js';
import { testRedisUrl, TOOLS } from '../support/env.js';
import { startRedis } from '../support/services.js';
import { AUTH, startStack, type Stack } from '../support/stack.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { tempDir } from '../support/temp-dir.js';

process.env.STV_CATALOGUE_KEY_PASSWORD = `catalogue-${Date.now()}`;
const digest = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;
const DAY = 86_400_000;

describe('the catalogue store on a real Redis', () => {
  let container: StartedTestContainer;
  let redis: Redis;
  let store: CatalogueStore;
  const base = Date.now() - DAY;
  const update = (tenant: string, n: number, over: Partial<CatalogueUpdate> = {}): CatalogueUpdate => ({
    tenant,
    digest: digest(n),
    at: new Date(base + n * 1000).toISOString(),
    repository: `r.example/team/app${n % 3}`,
    repositories: [`r.example/team/app${n % 3}`],
    references: [`r.example/team/app${n % 3}:v${n}`],
    ...over,
  });
  const all = async (tenant: string, limit: number, matches = () => true) => {
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.list({ tenant, limit, cursor, matches });
      pages.push(page.items.map((r) => r.digest));
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    return pages;
  };

  before(async () => {
    container = await startRedis();
    redis = new Redis(testRedisUrl(container.getMappedPort(6379)));
    store = new CatalogueStore(redis, 90);
  });
  after(async () => {
    redis?.disconnect();
    await container?.stop();
  });

  it('pages newest first without gaps or repeats, and refuses a cursor it did not issue', async () => {
    for (let n = 1; n <= 250; n++) await store.apply(update('paging', n));
    const pages = await all('paging', 100);
    assert.deepEqual(
      pages.map((p) => p.length),
      [100, 100, 50],
    );
    assert.deepEqual(
      pages.flat(),
      Array.from({ length: 250 }, (_, i) => digest(250 - i)),
    );
    for (const cursor of ['nope', Buffer.from('1|sha256:xyz').toString('base64url')])
      await assert.rejects(store.list({ tenant: 'paging', limit: 1, cursor, matches: () => true }), InvalidCatalogueCursorError);
    assert.deepEqual((await store.list({ tenant: 'nobody', limit: 10, matches: () => true })).items, []);
  });

  it(`examines at most ${MAX_EXAMINED} records per request and hands back a cursor to go on`, async () => {
    const pipeline: Promise<void>[] = [];
    for (let n = 1; n <= MAX_EXAMINED + 200; n++)
      pipeline.push(store.apply(update('sparse', n, n === 1 || n === 1150 ? { references: [`r.example/rare/x:rare${n}`] } : {})));
    await Promise.all(pipeline);
    const rare = (r: { references: { tag: string }[] }) => r.references.some((x) => x.tag.startsWith('rare'));
    const first = await store.list({ tenant: 'sparse', limit: 10, matches: rare });
    assert.deepEqual(
      first.items.map((r) => r.digest),
      [digest(1150)],
    );
    assert.ok(first.next_cursor, 'the cap was reached before the index ended');
    const second = await store.list({ tenant: 'sparse', limit: 10, matches: rare, cursor: first.next_cursor });
    assert.deepEqual(
      second.items.map((r) => r.digest),
      [digest(1)],
    );
    assert.equal(second.next_cursor, null);
  });

  it('merges jobs finishing together for one digest, and a late older scan does not replace a newer one', async () => {
    const at = (s: number) => new Date(base + s * 1000).toISOString();
    const scan = (job: string, s: number) => ({
      job_id: job,
      scanned_at: at(s),
      db_updated_at: null,
      summary: { critical: s, high: 0, medium: 0, low: 0, unknown: 0, fixable: 0 },
      policy: { passed: true, violations: 0 },
      platforms: ['linux/amd64'],
      reports: [],
    });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        store.apply(
          update('merge', 7, {
            at: at(i),
            references: [`r.example/team/app:t${i}`],
            signatures: [{ key: `key${i % 4}`, job_id: `sign${i}`, at: at(i) }],
            ...(i === 10 ? { scan: scan('scan10', 10) } : {}),
          }),
        ),
      ),
    );
    await store.apply(update('merge', 7, { at: at(3), references: [], scan: scan('scan3', 3) }));
    const record = (await store.get('merge', digest(7)))!;
    assert.equal(record.references.length, 20);
    assert.deepEqual(
      record.signatures.map((s) => [s.key, s.job_id]),
      [
        ['key0', 'sign16'],
        ['key1', 'sign17'],
        ['key2', 'sign18'],
        ['key3', 'sign19'],
      ],
    );
    assert.equal(record.latest_scan?.job_id, 'scan10');
    assert.equal(record.first_seen, at(0));
    assert.equal(record.last_seen, at(19));
  });

  it(`keeps the ${MAX_REFERENCES} most recently seen tags of a digest`, async () => {
    for (let i = 0; i < MAX_REFERENCES + 5; i++)
      await store.apply(update('cap', 9, { at: new Date(base + i * 1000).toISOString(), references: [`r.example/team/app:c${i}`] }));
    const record = (await store.get('cap', digest(9)))!;
    assert.equal(record.references.length, MAX_REFERENCES);
    assert.equal(record.references[0]!.tag, `c${MAX_REFERENCES + 4}`);
    assert.ok(!record.references.some((r) => ['c0', 'c4'].includes(r.tag)) && record.references.some((r) => r.tag === 'c5'));
  });

  it('drops what was not seen within the retention: TTL on the record, pruned from the index on write', async () => {
    await store.apply(update('old', 1, { at: new Date(Date.now() - 91 * DAY).toISOString() }));
    assert.equal(await store.get('old', digest(1)), undefined);
    assert.deepEqual((await store.list({ tenant: 'old', limit: 10, matches: () => true })).items, []);
    await store.apply(update('old', 2, { at: new Date().toISOString() }));
    assert.equal(await redis.zscore('stv:images:t:old', digest(1)), null, 'pruned by the next write');
    const ttl = await redis.pttl(`stv:image:old:${digest(2)}`);
    assert.ok(ttl > 89 * DAY && ttl <= 90 * DAY, String(ttl));
  });
});

describe('GET /v1/images on the real stack: build, scan, sign, copy', () => {
  let stack: Stack;
  let server: any;
  let reader: string;
  const job = async (body: object) => waitForJob(server, (await request(server).post('/v1/jobs').set(AUTH).send(body).expect(202)).body.id);
  const list = async (query: string, auth: Record<string, string> = AUTH) =>
    (await request(server).get(`/v1/images${query}`).set(auth).expect(200)).body;
  const dockerfile = 'FROM debian:bookworm-slim\nRUN echo catalogue > /built-by\n';

  before(async () => {
    const keysDir = tempDir('stv-catalogue-keys-');
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(keysDir, 'release')], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: process.env.STV_CATALOGUE_KEY_PASSWORD },
    });
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({ keys: [{ name: 'release', key: join(keysDir, 'release.key'), password_env: 'STV_CATALOGUE_KEY_PASSWORD' }] }),
    );
    stack = await startStack({
      buildkit: true,
      overrides: { signing: { offline: true, keysFile }, trivy: { cacheDir: await makeTrivyCache(), dbUpdate: false } },
    });
    server = stack.app.getHttpServer();
    const key = (
      await request(server)
        .post('/v1/api-keys')
        .set(AUTH)
        .send({ tenant: 'team-b', scopes: ['jobs:read'] })
        .expect(201)
    ).body.key;
    reader = `Bearer ${key}`;
  });
  after(async () => stack?.stop());

  it('records each action into one record per digest, filters it, hides it from other tenants and keeps it over a restart', async () => {
    const reg = stack.registry.address;
    const built = await job({
      action: 'build',
      dockerfile_inline: dockerfile,
      tags: [`${reg}/team/cat:1`, `${reg}/team/cat:latest`],
      scan: { policy: { ignore_unfixed: true } },
      sign: true,
      push_to: [`${reg}/release/cat:1`],
    });
    assert.equal(built.state, 'succeeded', JSON.stringify(built.error));
    const d = built.result.build.digest as string;
    const scanned = await job({ action: 'scan', image: `${reg}/team/cat:1` });
    assert.equal(scanned.state, 'succeeded', JSON.stringify(scanned.error));
    const copied = await job({ action: 'push', image: `${reg}/team/cat:1`, destinations: [`${reg}/team/cat:copy`] });
    assert.equal(copied.state, 'succeeded', JSON.stringify(copied.error));
    const signedSeed = await job({ action: 'sign', image: `${reg}/library/debian:bookworm-slim` });
    assert.equal(signedSeed.state, 'succeeded', JSON.stringify(signedSeed.error));
    const gated = await job({
      action: 'build',
      // Another image: the same Dockerfile would build the same digest (SOURCE_DATE_EPOCH=0).
      dockerfile_inline: dockerfile.replace('catalogue', 'gated'),
      tags: [`${reg}/team/gated:1`],
      scan: { policy: { max_critical: 0 } },
    });
    assert.equal(gated.error?.code, 'POLICY_FAILED');

    const record = (await request(server).get(`/v1/images/${d}`).set(AUTH).expect(200)).body;
    assert.equal(record.digest, d);
    assert.equal(record.repository, `${reg}/team/cat`);
    assert.deepEqual(record.repositories, [`${reg}/release/cat`, `${reg}/team/cat`]);
    assert.deepEqual(record.references.map((r: any) => r.reference).sort(), [
      `${reg}/release/cat:1`,
      `${reg}/team/cat:1`,
      `${reg}/team/cat:copy`,
      `${reg}/team/cat:latest`,
    ]);
    assert.deepEqual(record.platforms, built.result.image_info.platforms);
    assert.equal(record.size_bytes, built.result.image_info.size_bytes);
    assert.ok(record.size_bytes > 0);
    assert.equal(record.build_job, built.id);
    // The scan job came after the build's own scan: its scan is the latest.
    assert.equal(record.latest_scan.job_id, scanned.id);
    assert.deepEqual(record.latest_scan.summary, scanned.result.summary);
    assert.equal(record.latest_scan.db_updated_at, scanned.result.scanner.db_updated_at);
    assert.ok(record.latest_scan.db_updated_at);
    assert.equal(record.latest_scan.policy.passed, scanned.result.policy.passed);
    assert.ok(record.latest_scan.reports.includes(scanned.result.platforms[0].artifacts.report));
    assert.deepEqual(
      record.signatures.map((s: any) => [s.key, s.job_id]),
      [['release', built.id]],
    );
    assert.deepEqual(
      record.attestations.map((a: any) => a.type),
      ['cyclonedx', 'vuln'],
    );
    assert.equal(record.sbom.job_id, scanned.id, 'the scan job stored one too, later');
    assert.equal(record.sbom.attached, true, 'the build attached one');
    assert.ok(!JSON.stringify(record).includes(process.env.STV_CATALOGUE_KEY_PASSWORD!), 'no key password');
    // The artifacts it names are there.
    await request(server).get(`/v1/jobs/${scanned.id}/artifacts/${record.latest_scan.reports[0]}`).set(AUTH).expect(200);

    const seed = (await list(`?repository=${encodeURIComponent(`${reg}/library/debian`)}`)).items;
    assert.equal(seed.length, 1);
    assert.equal(seed[0].latest_scan, null);
    assert.deepEqual(
      seed[0].references.map((r: any) => r.tag),
      ['bookworm-slim'],
    );
    const gatedRecord = (await list('?repository=team/gated')).items[0];
    assert.equal(gatedRecord.latest_scan.policy.passed, false);
    assert.equal(gatedRecord.build_job, gated.id);
    assert.ok(gatedRecord.latest_scan.summary.critical > 0);

    // Newest first: the gated build finished last.
    const everything = (await list('')).items.map((r: any) => r.digest);
    assert.equal(everything.length, 3);
    assert.equal(everything[0], gatedRecord.digest);
    const digests = async (q: string) => (await list(q)).items.map((r: any) => r.digest).sort();
    assert.deepEqual(await digests('?repository=team/*'), [d, gatedRecord.digest].sort());
    assert.deepEqual(await digests('?repository=release/**'), [d]);
    assert.deepEqual(await digests('?repository=nobody/*'), []);
    assert.deepEqual(await digests('?tag=copy'), [d]);
    assert.deepEqual(await digests('?tag=latest&repository=team/cat'), [d]);
    assert.deepEqual(await digests('?signed=true'), [d, seed[0].digest].sort());
    assert.deepEqual(await digests('?signed=false'), [gatedRecord.digest]);
    assert.deepEqual(await digests('?has_sbom=true'), [d]);
    assert.deepEqual(await digests('?has_sbom=false'), [gatedRecord.digest, seed[0].digest].sort());
    assert.deepEqual(
      await digests('?severity=critical'),
      record.latest_scan.summary.critical > 0 ? [d, gatedRecord.digest].sort() : [gatedRecord.digest],
    );
    assert.deepEqual(await digests('?severity=low&signed=false'), [gatedRecord.digest]);
    const page = await list('?limit=2');
    assert.equal(page.items.length, 2);
    assert.deepEqual(
      (await list(`?limit=2&cursor=${page.next_cursor}`)).items.map((r: any) => r.digest),
      [everything[2]],
    );

    for (const bad of [
      '?limit=0',
      '?limit=201',
      '?severity=urgent',
      '?signed=maybe',
      '?has_sbom=1',
      '?repository=Team/X',
      '?tag=a:b',
      '?cursor=zz',
      '?colour=red',
    ])
      assert.equal((await request(server).get(`/v1/images${bad}`).set(AUTH).expect(400)).body.error.code, 'VALIDATION_FAILED', bad);
    assert.equal((await request(server).get('/v1/images/sha256:abc').set(AUTH).expect(400)).body.error.code, 'VALIDATION_FAILED');
    assert.equal((await request(server).get('/v1/images/latest').set(AUTH).expect(400)).body.error.code, 'VALIDATION_FAILED');
    // The inspect route beside it is untouched.
    await request(server)
      .get('/v1/images/inspect')
      .query({ ref: `${reg}/team/cat:1` })
      .set(AUTH)
      .expect(200);

    // Another tenant: an empty catalogue, and this digest answers exactly like a missing one.
    assert.deepEqual(await list('', { authorization: reader }), { items: [], next_cursor: null });
    const theirs = await request(server).get(`/v1/images/${d}`).set({ authorization: reader }).expect(404);
    const missing = await request(server)
      .get(`/v1/images/${digest(1)}`)
      .set({ authorization: reader })
      .expect(404);
    assert.deepEqual(theirs.body.error.details, missing.body.error.details);
    assert.equal(theirs.body.error.code, missing.body.error.code);
    assert.equal(theirs.body.error.message.replace(d, 'D'), missing.body.error.message.replace(digest(1), 'D'));

    // Another app process on the same Redis answers the same.
    const again = await stack.startApp({ api: true, worker: false });
    assert.deepEqual((await request(again.app.getHttpServer()).get(`/v1/images/${d}`).set(AUTH).expect(200)).body, record);
    assert.equal((await request(again.app.getHttpServer()).get('/v1/images').set(AUTH).expect(200)).body.items.length, 3);
  });
});
