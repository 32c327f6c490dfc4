import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { create } from 'tar';
import { ContextError, ContextStore } from '../../src/contexts/context-store.js';
import { chunked, rawTar, type RawEntry } from '../support/tar-fixtures.js';

/** A real archive of a small tree, made by node-tar the way a client would. */
async function packTree(dir: string, gzip = false): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of create({ cwd: dir, gzip, portable: true }, ['.'])) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function isCode(code: ContextError['code']) {
  return (err: unknown) => err instanceof ContextError && err.code === code;
}

describe('ContextStore', () => {
  let base: string;
  let tree: string;
  let counter = 0;
  const newRoot = () => join(base, `root-${counter++}`);
  const newStore = (root = newRoot(), maxBytes = 1024 * 1024) => new ContextStore({ root, maxBytes, ttlSeconds: 60 });

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'stevedore-ctx-'));
    tree = join(base, 'tree');
    await mkdir(join(tree, 'src', 'lib'), { recursive: true });
    await writeFile(join(tree, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    await writeFile(join(tree, 'src', 'lib', 'app.js'), 'console.log("hi")\n');
    await symlink('../../Dockerfile', join(tree, 'src', 'lib', 'Dockerfile.link'));
  });
  after(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function assertTree(dir: string) {
    assert.equal(await readFile(join(dir, 'Dockerfile'), 'utf8'), 'FROM scratch\nCOPY . /\n');
    assert.equal(await readFile(join(dir, 'src', 'lib', 'app.js'), 'utf8'), 'console.log("hi")\n');
    assert.equal(await readlink(join(dir, 'src', 'lib', 'Dockerfile.link')), '../../Dockerfile');
  }

  it('stores a tar and serves its tree by digest', async () => {
    const store = newStore();
    const tar = await packTree(tree);
    const stored = await store.put(Readable.from([tar]), 'application/x-tar');
    assert.deepEqual(stored, { digest: sha256(tar), size_bytes: tar.length, expanded_bytes: stored.expanded_bytes, created: true });
    assert.ok(stored.expanded_bytes > 0);
    await assertTree(await store.path(stored.digest));
  });

  it('stores a tar.gz, hashing the compressed bytes as uploaded', async () => {
    const store = newStore();
    const gz = await packTree(tree, true);
    assert.deepEqual([gz[0], gz[1]], [0x1f, 0x8b]);
    const stored = await store.put(chunked(gz), 'application/gzip');
    assert.equal(stored.digest, sha256(gz));
    await assertTree(await store.path(stored.digest));
  });

  it('recognises gzip by its magic bytes even when labelled x-tar', async () => {
    const store = newStore();
    const stored = await store.put(chunked(await packTree(tree, true)), 'application/x-tar');
    await assertTree(await store.path(stored.digest));
  });

  it('refuses a plain tar labelled gzip', async () => {
    const root = newRoot();
    await assert.rejects(newStore(root).put(chunked(await packTree(tree)), 'application/gzip'), isCode('INVALID_CONTEXT'));
    assert.deepEqual(await readdir(root), []);
  });

  it('deduplicates the same bytes', async () => {
    const root = newRoot();
    const store = newStore(root);
    const tar = await packTree(tree);
    const first = await store.put(chunked(tar), 'application/x-tar');
    const second = await store.put(chunked(tar, 100), 'application/x-tar');
    assert.equal(first.created, true);
    assert.deepEqual(second, { ...first, created: false });
    assert.deepEqual(await readdir(root), [first.digest.slice('sha256:'.length)]);
  });

  it('lets concurrent uploads of the same bytes agree on one copy', async () => {
    const root = newRoot();
    const store = newStore(root);
    const tar = await packTree(tree);
    const results = await Promise.all([1, 2, 3].map(() => store.put(chunked(tar), 'application/x-tar')));
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.deepEqual(await readdir(root), [results[0]!.digest.slice('sha256:'.length)]);
    await assertTree(await store.path(results[0]!.digest));
  });

  it('stops at maxBytes and leaves nothing behind', async () => {
    const root = newRoot();
    const big = rawTar([{ name: 'big.bin', type: '0', content: 'x'.repeat(8000) }]);
    await assert.rejects(newStore(root, 4096).put(chunked(big, 1000), 'application/x-tar'), isCode('CONTEXT_TOO_LARGE'));
    assert.deepEqual(await readdir(root), []);
  });

  it('refuses a gzip body that unpacks past the unpacked-size cap', async () => {
    const root = newRoot();
    const store = new ContextStore({ root, maxBytes: 1 << 20, ttlSeconds: 60, maxExpandedBytes: 10_000 });
    const bomb = gzipSync(rawTar([{ name: 'zeros', type: '0', content: '\0'.repeat(50_000) }]));
    await assert.rejects(store.put(chunked(bomb), 'application/gzip'), isCode('CONTEXT_TOO_LARGE'));
    assert.deepEqual(await readdir(root), []);
  });

  const ok: RawEntry = { name: 'Dockerfile', type: '0', content: 'FROM scratch\n' };
  const hostile: [string, Buffer][] = [
    ['a ../evil entry', rawTar([ok, { name: '../evil', type: '0', content: 'x' }])],
    ['an absolute /etc/evil entry', rawTar([ok, { name: '/etc/evil', type: '0', content: 'x' }])],
    ['an a/../../evil entry', rawTar([ok, { name: 'a/../../evil', type: '0', content: 'x' }])],
    [
      'a symlink to /etc with a file written through it',
      rawTar([ok, { name: 'link', type: '2', linkname: '/etc' }, { name: 'link/passwd', type: '0', content: 'x' }]),
    ],
    ['a symlink up -> ../..', rawTar([ok, { name: 'up', type: '2', linkname: '../..' }])],
    ['a symlink sub/up -> ../../x', rawTar([ok, { name: 'sub/', type: '5' }, { name: 'sub/up', type: '2', linkname: '../../x' }])],
    [
      'a file written through an inside symlink',
      rawTar([ok, { name: 'sub/', type: '5' }, { name: 'in', type: '2', linkname: 'sub' }, { name: 'in/x', type: '0', content: 'x' }]),
    ],
    [
      'a symlink that escapes through a later symlink',
      rawTar([ok, { name: 'c', type: '2', linkname: 'a/b/..' }, { name: 'a/', type: '5' }, { name: 'a/b', type: '2', linkname: '..' }]),
    ],
    [
      'a symlink replacing a directory already written to',
      rawTar([ok, { name: 'd/', type: '5' }, { name: 'd/f', type: '0', content: 'x' }, { name: 'd', type: '2', linkname: 'd2' }]),
    ],
    ['a hard link to ../../etc/passwd', rawTar([ok, { name: 'h', type: '1', linkname: '../../etc/passwd' }])],
    ['a hard link to /etc/passwd', rawTar([ok, { name: 'h', type: '1', linkname: '/etc/passwd' }])],
    [
      'a hard link to a symlink',
      rawTar([
        ok,
        { name: 'sub/', type: '5' },
        { name: 'sub/l', type: '2', linkname: '../Dockerfile' },
        { name: 'h', type: '1', linkname: 'sub/l' },
      ]),
    ],
    [
      'a pax header renaming an entry to ../evil',
      rawTar([ok, { name: 'PaxHeader/innocent', type: 'x', content: '16 path=../evil\n' }, { name: 'innocent', type: '0', content: 'x' }]),
    ],
    [
      'a GNU long name /etc/evil',
      rawTar([ok, { name: '././@LongLink', type: 'L', content: '/etc/evil\0' }, { name: 'innocent', type: '0', content: 'x' }]),
    ],
    ['a character device', rawTar([ok, { name: 'null', type: '3' }])],
    ['a block device', rawTar([ok, { name: 'sda', type: '4' }])],
    ['a FIFO', rawTar([ok, { name: 'fifo', type: '6' }])],
    ['an entry of unknown type', rawTar([ok, { name: 'odd', type: 'Z' }])],
    ['random non-tar bytes', Buffer.from('this is not a tar archive, just text\n'.repeat(40))],
    ['a truncated tar', rawTar([ok, { name: 'big', type: '0', content: 'y'.repeat(3000) }]).subarray(0, 1536)],
  ];
  for (const [what, body] of hostile) {
    it(`refuses ${what}, leaving nothing behind`, async () => {
      const root = newRoot();
      for (const [label, bytes, type] of [
        ['tar', body, 'application/x-tar'],
        ['tar.gz', gzipSync(body), 'application/gzip'],
      ] as const) {
        await assert.rejects(newStore(root).put(chunked(bytes), type), isCode('INVALID_CONTEXT'), `${what} as ${label}`);
        assert.deepEqual(await readdir(root), [], `${what} as ${label}`);
      }
    });
  }

  it('names the refused entry', async () => {
    const body = rawTar([ok, { name: 'up', type: '2', linkname: '../..' }]);
    await assert.rejects(newStore().put(chunked(body), 'application/x-tar'), (err: Error) => err.message.includes('"up"'));
  });

  it('accepts safe relative symlinks, including ones that go up and back in', async () => {
    const body = rawTar([
      ok,
      { name: 'a/b/', type: '5' },
      { name: 'a/b/l', type: '2', linkname: '../../Dockerfile' },
      { name: 'a/loop', type: '2', linkname: '../a/b' },
      { name: 'h', type: '1', linkname: 'Dockerfile' },
    ]);
    const store = newStore();
    const dir = await store.path((await store.put(chunked(body), 'application/x-tar')).digest);
    assert.equal(await readFile(join(dir, 'a', 'b', 'l'), 'utf8'), 'FROM scratch\n');
    assert.equal(await readFile(join(dir, 'h'), 'utf8'), 'FROM scratch\n');
  });

  it('path() refuses malformed digests and reports unknown ones', async () => {
    const store = newStore();
    for (const bad of [
      '',
      'sha256:abc',
      `sha256:${'A'.repeat(64)}`,
      `sha512:${'a'.repeat(64)}`,
      `sha256:${'a'.repeat(63)}/`,
      `sha256:../${'a'.repeat(61)}`,
    ]) {
      await assert.rejects(store.path(bad), isCode('INVALID_CONTEXT'), bad);
    }
    await assert.rejects(store.path(`sha256:${'a'.repeat(64)}`), isCode('CONTEXT_NOT_FOUND'));
  });

  it('gc removes contexts unused for the TTL and stale temp dirs, and keeps the rest', async () => {
    const root = newRoot();
    const store = newStore(root);
    const stored = await store.put(chunked(await packTree(tree)), 'application/x-tar');
    await mkdir(join(root, `${'b'.repeat(64)}.tmp-dead`));
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(join(root, `${'b'.repeat(64)}.tmp-dead`), hourAgo, hourAgo);
    assert.equal(await store.gc(), 1); // only the stale temp dir
    await store.path(stored.digest);
    assert.equal(await store.gc(Date.now() + 61_000), 1);
    assert.deepEqual(await readdir(root), []);
    await assert.rejects(store.path(stored.digest), isCode('CONTEXT_NOT_FOUND'));
  });
});
