import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  decideUpdate,
  looksLikeBoltDb,
  missingDbHint,
  parseDbMetadata,
  RECENT_DOWNLOAD_MS,
  UPDATE_RETRY_MS,
  type DbMetadata,
} from '../../src/engines/trivy/trivy-db-policy.js';
import { probeSchemes, repositoryRegistry } from '../../src/engines/trivy/trivy-db-probe.js';
import { checkDbEntry, DbUploadError, receiveDbArchive } from '../../src/engines/trivy/trivy-db-upload.js';
import { TrivyDb } from '../../src/engines/trivy/trivy-db.js';
import type { ProcessRunner } from '../../src/engines/process-runner.js';
import { chunked, ustarHeader, type RawEntry } from '../support/tar-fixtures.js';
import { tempDir } from '../support/temp-dir.js';

const META = { Version: 2, NextUpdate: '2999-01-01T00:00:00Z', UpdatedAt: '2026-11-01T00:00:00Z', DownloadedAt: '2026-11-01T00:00:00Z' };

/** The first bytes of a bbolt file (meta page header, magic, version 2), then padding. */
function boltBytes(size = 4096): Buffer {
  const b = Buffer.alloc(size);
  b.writeUInt32LE(0xed0cdaed, 16);
  b.writeUInt32LE(2, 20);
  return b;
}

/** A tar with Buffer contents (tar-fixtures' rawTar takes strings). */
function tarOf(entries: (RawEntry & { data?: Buffer })[], trailer = Buffer.alloc(1024)): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.from(e.content ?? '');
    blocks.push(ustarHeader(e, data.length), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, trailer]);
}

const goodEntries = (meta: object = META) => [
  { name: 'trivy.db', type: '0', data: boltBytes() },
  { name: 'metadata.json', type: '0', content: JSON.stringify(meta) },
];

async function receive(bytes: Buffer, maxBytes = 1024 ** 2) {
  const dir = tempDir('stv-dbtest-');
  try {
    return { dir, result: await receiveDbArchive(Readable.from(chunked(bytes, 700)), dir, maxBytes) };
  } catch (err) {
    return { dir, error: err as DbUploadError };
  }
}

describe('Trivy DB metadata and files', () => {
  it('accepts the metadata Trivy v0.74 reads, and says what is wrong with any other', () => {
    assert.deepEqual(parseDbMetadata(JSON.stringify(META)), META);
    // Go's zero time is a field never set.
    assert.equal(parseDbMetadata(JSON.stringify({ ...META, DownloadedAt: '0001-01-01T00:00:00Z' })).DownloadedAt, undefined);
    const refusals: [string, RegExp][] = [
      ['{"Version":2', /not JSON/],
      ['[]', /not a JSON object/],
      [JSON.stringify({ ...META, Version: '2' }), /integer Version/],
      [JSON.stringify({ ...META, Version: 1 }), /schema version 1; Trivy v0.74 reads schema 2/],
      [JSON.stringify({ Version: 2 }), /lacks UpdatedAt/],
      [JSON.stringify({ ...META, UpdatedAt: 'yesterday' }), /lacks UpdatedAt/],
      [JSON.stringify({ ...META, NextUpdate: 5 }), /NextUpdate that is not a time/],
    ];
    for (const [text, message] of refusals) assert.throws(() => parseDbMetadata(text), message, text);
  });

  it('tells a bbolt file from anything else by its meta page', () => {
    assert.equal(looksLikeBoltDb(boltBytes(24)), true);
    assert.equal(looksLikeBoltDb(Buffer.alloc(4096)), false);
    assert.equal(looksLikeBoltDb(Buffer.from('SQLite format 3\0 and more bytes')), false);
    assert.equal(looksLikeBoltDb(boltBytes(24).subarray(0, 23)), false);
  });

  it('names the variable, the path, the files and the endpoint when there is no DB', () => {
    const hint = missingDbHint('/var/lib/stevedore/trivy/', 'auto', ['127.0.0.1:9/trivy-db:2'], 'no answer');
    for (const part of [
      'no Trivy vulnerability DB in /var/lib/stevedore/trivy/db',
      '127.0.0.1:9/trivy-db:2 (no answer)',
      'PUT /v1/system/trivy-db',
      'trivy.db and metadata.json',
      'STEVEDORE_TRIVY_DB_UPDATE',
      'STEVEDORE_TRIVY_DB_REPOSITORY',
    ])
      assert.ok(hint.includes(part), `${part} in ${hint}`);
    assert.match(missingDbHint('/c', false, []), /DB updates are off \(STEVEDORE_TRIVY_DB_UPDATE=false\)/);
  });
});

describe('the auto update policy', () => {
  const now = Date.parse('2026-12-03T08:00:00Z');
  const meta = (fields: Partial<DbMetadata>): DbMetadata => ({ Version: 2, UpdatedAt: '2026-12-01T00:00:00Z', ...fields });
  const due = meta({ NextUpdate: '2026-12-02T00:00:00Z', DownloadedAt: '2026-12-01T01:00:00Z' });

  it('leaves a current DB alone, updates a due one beside the scan, and waits only when there is none', () => {
    assert.equal(decideUpdate(now, meta({ NextUpdate: '2026-12-04T00:00:00Z' }), undefined), 'fresh');
    // Trivy's own rule: downloaded within the hour is current, whatever NextUpdate says.
    assert.equal(decideUpdate(now, meta({ NextUpdate: '2026-12-02T00:00:00Z', DownloadedAt: '2026-12-03T07:30:00Z' }), undefined), 'fresh');
    assert.equal(decideUpdate(now, due, undefined), 'background');
    assert.equal(decideUpdate(now, meta({}), undefined), 'background');
    assert.equal(decideUpdate(now, undefined, undefined), 'blocking');
  });

  it('tries at most once per interval after a failure, and not again soon after a success', () => {
    const failed = { at: now - 60_000, ok: false };
    assert.equal(decideUpdate(now, due, failed), 'backoff');
    assert.equal(decideUpdate(now, undefined, failed), 'backoff');
    assert.equal(decideUpdate(now + UPDATE_RETRY_MS, undefined, failed), 'blocking');
    assert.equal(decideUpdate(now + UPDATE_RETRY_MS, due, failed), 'background');
    // A download that brought a DB already due (a stale mirror) is not repeated every scan.
    const succeeded = { at: now - 60_000, ok: true };
    assert.equal(decideUpdate(now, due, succeeded), 'fresh');
    assert.equal(decideUpdate(now - 60_000 + RECENT_DOWNLOAD_MS, due, succeeded), 'background');
  });

  it('probes a registry the way Trivy would reach it', () => {
    assert.equal(repositoryRegistry('mirror.gcr.io/aquasec/trivy-db:2'), 'mirror.gcr.io');
    assert.equal(repositoryRegistry('aquasec/trivy-db:2'), 'registry-1.docker.io');
    assert.equal(repositoryRegistry('127.0.0.1:5000/trivy-db'), '127.0.0.1:5000');
    assert.deepEqual(probeSchemes('127.0.0.1:5000', []), ['http']);
    assert.deepEqual(probeSchemes('10.1.2.3:5000', []), ['https', 'http']);
    assert.deepEqual(probeSchemes('mirror.internal:5000', ['mirror.internal:5000']), ['http']);
    assert.deepEqual(probeSchemes('ghcr.io', []), ['https']);
  });
});

describe('a Trivy DB archive', () => {
  it('takes the root directory entry and ./ prefixes, refuses every other entry', () => {
    const seen = new Set<'trivy.db' | 'metadata.json'>();
    assert.equal(checkDbEntry({ path: './', type: 'Directory', size: 0 }, seen, 100), undefined);
    assert.equal(checkDbEntry({ path: './trivy.db', type: 'File', size: 100 }, seen, 100), 'trivy.db');
    assert.equal(checkDbEntry({ path: 'metadata.json', type: 'OldFile', size: 10 }, seen, 100), 'metadata.json');
    const refusals: [Parameters<typeof checkDbEntry>[0], RegExp, string?][] = [
      [{ path: '../trivy.db', type: 'File', size: 1 }, /outside the archive/],
      [{ path: '/trivy.db', type: 'File', size: 1 }, /outside the archive/],
      [{ path: 'db/../../x', type: 'File', size: 1 }, /outside the archive/],
      [{ path: 'trivy.db', type: 'SymbolicLink', size: 0, linkpath: '/etc/passwd' }, /is a link \(-> "\/etc\/passwd"\)/],
      [{ path: 'metadata.json', type: 'Link', size: 0, linkpath: 'trivy.db' }, /is a link/],
      [{ path: 'db', type: 'Directory', size: 0 }, /is a Directory/],
      [{ path: 'trivy.db', type: 'CharacterDevice', size: 0 }, /is a CharacterDevice/],
      [{ path: 'fanal.db', type: 'File', size: 1 }, /unexpected entry "fanal.db"/],
      [{ path: 'db/trivy.db', type: 'File', size: 1 }, /unexpected entry/],
      [{ path: 'trivy.db', type: 'File', size: 101 }, /trivy.db is 101 bytes, over the limit of 100 bytes/, 'TRIVY_DB_TOO_LARGE'],
      [{ path: 'metadata.json', type: 'File', size: 65 * 1024 }, /over the limit/, 'TRIVY_DB_TOO_LARGE'],
    ];
    for (const [entry, message, code] of refusals) {
      assert.throws(
        () => checkDbEntry(entry, new Set(), 100),
        (err: DbUploadError) => message.test(err.message) && err.code === (code ?? 'INVALID_TRIVY_DB'),
        JSON.stringify(entry),
      );
    }
    assert.throws(() => checkDbEntry({ path: 'trivy.db', type: 'File', size: 1 }, new Set(['trivy.db']), 100), /appears twice/);
  });

  it('streams a tar or a tar.gz of the two files into place, checked', async () => {
    for (const bytes of [tarOf(goodEntries()), gzipSync(tarOf(goodEntries()))]) {
      const { dir, result, error } = await receive(bytes);
      assert.equal(error, undefined, error?.message);
      assert.deepEqual(result, { meta: META, sizeBytes: 4096 });
      assert.deepEqual(readdirSync(dir).sort(), ['metadata.json', 'trivy.db']);
    }
  });

  it('refuses hostile and broken archives with a reason, writing nothing outside its directory', async () => {
    const outside = join(tmpdir(), `stv-dbtest-escape-${process.pid}`);
    const cases: [string, Buffer, RegExp, string?][] = [
      ['traversal', tarOf([...goodEntries(), { name: `../${outside.split('/').pop()}`, type: '0', content: 'x' }]), /outside the archive/],
      ['extra file', tarOf([...goodEntries(), { name: 'extra.txt', type: '0', content: 'x' }]), /unexpected entry "extra.txt"/],
      ['symlink', tarOf([{ name: 'trivy.db', type: '2', linkname: '/etc/passwd' }, goodEntries()[1]!]), /is a link/],
      ['missing file', tarOf([goodEntries()[0]!]), /lacks metadata.json/],
      ['duplicate', tarOf([...goodEntries(), goodEntries()[0]!]), /appears twice/],
      ['old schema', tarOf(goodEntries({ ...META, Version: 1 })), /schema version 1/],
      ['no UpdatedAt', tarOf(goodEntries({ Version: 2 })), /lacks UpdatedAt/],
      ['not bbolt', tarOf([{ name: 'trivy.db', type: '0', content: 'hello' }, goodEntries()[1]!]), /not a bbolt database/],
      ['garbage', Buffer.from('this is not a tar archive at all, just some text that goes on'.repeat(20)), /not a readable tar archive/],
      ['gzip of garbage', gzipSync(Buffer.alloc(4096, 7)), /not a readable tar archive/],
      ['truncated gzip', gzipSync(tarOf(goodEntries())).subarray(0, 200), /not a readable tar archive/],
      ['compressed twice', gzipSync(gzipSync(tarOf(goodEntries()))), /compressed twice/],
      ['empty', Buffer.alloc(0), /body is empty/],
      ['zeros after an empty tar', gzipSync(Buffer.alloc(2 * 1024 ** 2)), /data appended/],
      ['appended data', tarOf(goodEntries(), Buffer.concat([Buffer.alloc(1024), Buffer.alloc(2 * 1024 ** 2, 1)])), /data appended/],
      [
        'oversize entry',
        tarOf([{ name: 'trivy.db', type: '0', data: boltBytes(8192) }, goodEntries()[1]!]),
        /over the limit/,
        'TRIVY_DB_TOO_LARGE',
      ],
      ['oversize body', gzipSync(tarOf(goodEntries())), /larger, over the limit/, 'TRIVY_DB_TOO_LARGE'],
    ];
    for (const [what, bytes, message, code] of cases) {
      const limit = {
        'oversize entry': 5000,
        'oversize body': 100,
        'appended data': 16 * 1024 ** 2,
        'zeros after an empty tar': 16 * 1024 ** 2,
      }[what];
      const { error } = await receive(bytes, limit);
      assert.ok(error instanceof DbUploadError, `${what}: ${error?.message ?? 'accepted'}`);
      assert.match(error.message, message, what);
      assert.equal(error.code, code ?? 'INVALID_TRIVY_DB', what);
    }
    assert.equal(existsSync(outside), false);
  });
});

describe('TrivyDb in auto mode, with a fake trivy and a loopback /v2/', () => {
  /** An HTTP server answering 401 on everything, as a registry's /v2/ does without a token. */
  async function fakeRegistry(): Promise<{ address: string; close(): void }> {
    const server = createServer((_req, res) => res.writeHead(401).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { address: `127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() };
  }
  /** A ProcessRunner standing in for `trivy image --download-db-only`: writes a DB, or fails. */
  function fakeTrivy(outcome: 'write' | 'fail', meta: object = META) {
    const calls: string[][] = [];
    const runner: ProcessRunner = {
      async run(_command, args) {
        calls.push([...args]);
        if (outcome === 'fail') throw Object.assign(new Error('trivy exited with code 1'), { stderrTail: 'FATAL\tMANIFEST_UNKNOWN' });
        const db = join(args[args.indexOf('--cache-dir') + 1]!, 'db');
        mkdirSync(db, { recursive: true });
        writeFileSync(join(db, 'trivy.db'), boltBytes());
        writeFileSync(join(db, 'metadata.json'), JSON.stringify(meta));
        return { stdout: '', stderr: '', durationMs: 1 };
      },
    };
    return { runner, calls };
  }
  const settings = (repository: string) => ({
    trivy: 'trivy',
    cacheDir: tempDir('stv-dbauto-'),
    dbUpdate: 'auto' as const,
    dbRepositories: [repository],
    insecureRegistries: [],
  });

  it('downloads a missing DB once, through trivy, into place', async () => {
    const registry = await fakeRegistry();
    try {
      const { runner, calls } = fakeTrivy('write');
      const db = new TrivyDb(runner, settings(`${registry.address}/aquasec/trivy-db:2`));
      await db.prepare();
      assert.equal(calls.length, 1);
      assert.deepEqual(calls[0]!.slice(0, 2), ['image', '--download-db-only']);
      assert.equal(calls[0]![calls[0]!.indexOf('--db-repository') + 1], `${registry.address}/aquasec/trivy-db:2`);
      assert.match(calls[0]![calls[0]!.indexOf('--cache-dir') + 1]!, /\/\.db-download-/);
      const state = await db.state();
      assert.equal(state.present, true);
      assert.equal(state.source, 'downloaded');
      assert.equal(state.last_update?.result, 'updated');
      await db.prepare(); // NextUpdate ahead: nothing to do
      assert.equal(calls.length, 1);
      assert.deepEqual(
        readdirSync(join(db.dir, '..')).filter((f) => f.startsWith('.db-')),
        [],
      );
    } finally {
      registry.close();
    }
  });

  it('after a failed download, says why in the hint and does not retry at once', async () => {
    const registry = await fakeRegistry();
    try {
      const { runner, calls } = fakeTrivy('fail');
      const db = new TrivyDb(runner, settings(`${registry.address}/aquasec/trivy-db:2`));
      await db.prepare();
      await db.prepare();
      assert.equal(calls.length, 1);
      assert.equal((await db.state()).last_update?.result, 'failed');
      assert.match(db.missingHint(), /no DB could be downloaded from .* \(download from .* failed: FATAL\tMANIFEST_UNKNOWN\)/);
    } finally {
      registry.close();
    }
  });

  it('never runs trivy when no registry answers, nor outside auto', async () => {
    const { runner, calls } = fakeTrivy('write');
    const closed = await fakeRegistry();
    closed.close();
    const db = new TrivyDb(runner, settings(`${closed.address}/aquasec/trivy-db:2`));
    await db.prepare();
    assert.equal((await db.state()).last_update?.result, 'unreachable');
    await new TrivyDb(runner, { ...settings(`${closed.address}/x:2`), dbUpdate: false }).prepare();
    assert.equal(calls.length, 0);
  });
});
