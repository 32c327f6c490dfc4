import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readFileBodies, readImageFiles } from '../../src/engines/registry/image-files.js';
import type { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { rawTar, type RawEntry } from '../support/tar-fixtures.js';

const ELF = '\x7fELF\x02\x01\x01\x00 rest of a program';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A registry client that serves one image from memory: enough for readImageFiles and readFileBodies. */
function image(layers: RawEntry[][], config: object = { os: 'linux', architecture: 'amd64', config: { Cmd: ['hello'] } }) {
  const blobs = new Map<string, Buffer>();
  const descriptors = layers.map((entries) => {
    const gz = gzipSync(rawTar(entries));
    blobs.set(sha(gz), gz);
    return { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(gz), size: gz.length };
  });
  const configBlob = Buffer.from(JSON.stringify(config));
  const manifest = {
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(configBlob), size: configBlob.length },
    layers: descriptors,
  };
  const streamed: string[] = [];
  const client = {
    getManifest: async () => ({ digest: 'sha256:' + 'a'.repeat(64), json: manifest }),
    getJsonBlob: async () => config,
  } as unknown as RegistryClient;
  const fetchBlobStream = async (_repo: string, digest: string) => (streamed.push(digest), Readable.from([blobs.get(digest)!]));
  return { client, fetchBlobStream, streamed, descriptors };
}

describe("an image's final filesystem, read from its layers", () => {
  const layers: RawEntry[][] = [
    [
      { name: 'usr/', type: '5' },
      { name: 'usr/lib/', type: '5' },
      { name: 'lib', type: '2', linkname: 'usr/lib' },
      { name: 'usr/lib/libc.so.6', type: '0', content: ELF },
      { name: 'var/lib/dpkg/status', type: '0', content: 'Package: libc6\nStatus: install ok installed\n' },
      { name: 'var/lib/dpkg/info/libc6.list', type: '0', content: '/lib/libc.so.6\n' },
      { name: 'tmp/gone', type: '0', content: 'x' },
    ],
    [
      { name: 'usr/local/bin/hello', type: '0', content: ELF },
      { name: 'usr/local/bin/tool', type: '0', content: '#!/bin/sh\necho hi\n' },
      { name: 'usr/local/bin/data', type: '0', content: 'just data' },
      { name: 'tmp/.wh.gone', type: '0' },
    ],
  ];

  it('stacks the layers, keeps heads of ELF files and scripts only, and reads dpkg texts whole', async () => {
    const { client, fetchBlobStream } = image(layers);
    const files = await readImageFiles(client, 'team/app', 'sha256:' + 'a'.repeat(64), { fetchBlobStream });
    assert.equal(files.tree.resolve('/lib/libc.so.6'), '/usr/lib/libc.so.6');
    assert.equal(files.tree.get('/tmp/gone'), undefined, 'the whiteout hid it');
    assert.equal(files.tree.get('/usr/local/bin/hello')?.layer, 1);
    assert.ok(files.tree.get('/usr/local/bin/hello')?.head?.toString('latin1').startsWith('\x7fELF'));
    assert.ok(files.tree.get('/usr/local/bin/tool')?.head, 'a #! script keeps its head');
    assert.equal(files.tree.get('/usr/local/bin/data')?.head, undefined, 'data does not');
    assert.equal(files.texts.get('/var/lib/dpkg/status')?.[0]?.text, 'Package: libc6\nStatus: install ok installed\n');
    assert.deepEqual(files.config, { Cmd: ['hello'] });
  });

  it('reads whole bodies of chosen files, streaming only the layers that hold them', async () => {
    const { client, fetchBlobStream, streamed, descriptors } = image(layers);
    const files = await readImageFiles(client, 'team/app', 'sha256:' + 'a'.repeat(64), { fetchBlobStream });
    streamed.length = 0;
    const bodies = await readFileBodies(client, files, ['/usr/local/bin/hello', '/nothere'], { fetchBlobStream });
    assert.equal(bodies.get('/usr/local/bin/hello')?.toString('latin1'), ELF);
    assert.deepEqual(streamed, [descriptors[1]!.digest]);
  });

  it('refuses an image with more entries than it reads (a hostile image of tiny files)', async () => {
    const { client, fetchBlobStream } = image(layers);
    await assert.rejects(
      readImageFiles(client, 'team/app', 'sha256:' + 'a'.repeat(64), { fetchBlobStream, maxEntries: 5 }),
      /more than 5 files/,
    );
  });
});
