import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { elfArch, machineName, readElfHeader, type ElfHeader } from '../../src/analysis/image/elf-header.js';
import { checkFilesystem, type ElfLayer } from '../../src/analysis/image/platform-check.js';
import { judgeElf, platformArch } from '../../src/analysis/image/platform-rules.js';
import { scanElfLayer } from '../../src/engines/registry/platform-check.js';
import { readTarEntries } from '../../src/engines/registry/tar-stream-reader.js';

/** The first 64 bytes of an ELF file: e_ident, e_type at 16, e_machine at 18, in the file's byte order. */
function elf(
  machine: number,
  { bits = 64, endian = 'little', type = 3 }: { bits?: 32 | 64; endian?: 'little' | 'big'; type?: number } = {},
) {
  const b = Buffer.alloc(64);
  b.set([0x7f, 0x45, 0x4c, 0x46, bits === 64 ? 2 : 1, endian === 'little' ? 1 : 2, 1]);
  if (endian === 'little') {
    b.writeUInt16LE(type, 16);
    b.writeUInt16LE(machine, 18);
  } else {
    b.writeUInt16BE(type, 16);
    b.writeUInt16BE(machine, 18);
  }
  return b;
}
const X86_64 = 0x3e;
const AARCH64 = 0xb7;
const ARM = 0x28;
const S390 = 0x16;
const header = (machine: number, opts?: Parameters<typeof elf>[1]) => readElfHeader(elf(machine, opts))!;

describe('readElfHeader', () => {
  it('reads class, byte order, type and machine', () => {
    assert.deepEqual(readElfHeader(elf(X86_64, { type: 2 })), { bits: 64, endian: 'little', type: 'executable', machine: X86_64 });
    assert.deepEqual(readElfHeader(elf(AARCH64)), { bits: 64, endian: 'little', type: 'shared', machine: AARCH64 });
    assert.deepEqual(readElfHeader(elf(ARM, { bits: 32 })), { bits: 32, endian: 'little', type: 'shared', machine: ARM });
    // Big-endian: e_machine 0x0016 is bytes 00 16; read little-endian it would be 0x1600.
    assert.deepEqual(readElfHeader(elf(S390, { endian: 'big', type: 2 })), { bits: 64, endian: 'big', type: 'executable', machine: S390 });
    assert.equal(readElfHeader(elf(X86_64, { type: 1 }))!.type, 'relocatable');
  });

  it('answers undefined for anything that is not a readable ELF header', () => {
    assert.equal(readElfHeader(elf(X86_64).subarray(0, 19)), undefined, 'truncated before e_machine ends');
    assert.ok(readElfHeader(elf(X86_64).subarray(0, 20)), '20 bytes are enough');
    assert.equal(readElfHeader(Buffer.from('#!/bin/sh\necho hello from a script\n')), undefined);
    assert.equal(readElfHeader(Buffer.from('!<arch>\n' + 'x'.repeat(60))), undefined, 'an ar archive (.a)');
    assert.equal(readElfHeader(Buffer.alloc(0)), undefined);
    const badClass = elf(X86_64);
    badClass[4] = 3;
    assert.equal(readElfHeader(badClass), undefined);
    const badOrder = elf(X86_64);
    badOrder[5] = 0;
    assert.equal(readElfHeader(badOrder), undefined);
  });

  it('maps machines to OCI architectures and readable names', () => {
    assert.equal(elfArch(header(X86_64)), 'amd64');
    assert.equal(elfArch(header(AARCH64)), 'arm64');
    assert.equal(elfArch(header(ARM, { bits: 32 })), 'arm');
    assert.equal(elfArch(header(0x03, { bits: 32 })), '386');
    assert.equal(elfArch(header(0x15)), 'ppc64le');
    assert.equal(elfArch(header(0x15, { endian: 'big' })), 'ppc64');
    assert.equal(elfArch(header(S390, { endian: 'big' })), 's390x');
    assert.equal(elfArch(header(0xf3)), 'riscv64');
    assert.equal(elfArch(header(0x1234)), undefined);
    assert.equal(machineName(header(X86_64)), 'x86-64');
    assert.equal(machineName(header(AARCH64)), 'AArch64');
    assert.equal(machineName(header(0x15, { endian: 'big' })), 'PowerPC64 (ppc64)');
    assert.equal(machineName(header(0x1234)), 'e_machine 0x1234');
  });
});

describe('judgeElf: the mismatch rules', () => {
  const x86 = header(X86_64);
  it('matches the platform architecture, variants and aliases folded', () => {
    assert.deepEqual(judgeElf('/usr/bin/dash', x86, 'linux/amd64'), { ok: true, checked: true });
    assert.deepEqual(judgeElf('/usr/bin/dash', header(AARCH64), 'linux/arm64/v8'), { ok: true, checked: true });
    assert.deepEqual(judgeElf('/usr/bin/dash', header(ARM, { bits: 32 }), 'linux/arm/v7'), { ok: true, checked: true });
    assert.deepEqual(judgeElf('/bin/true', header(S390, { endian: 'big' }), 'linux/s390x'), { ok: true, checked: true });
    assert.equal(platformArch('linux/arm/v7'), 'arm');
    assert.equal(platformArch('linux/x86_64'), 'amd64');
  });

  it('flags a foreign executable or shared object', () => {
    assert.deepEqual(judgeElf('/usr/bin/dash', x86, 'linux/arm64'), { ok: false, arch: 'amd64' });
    assert.deepEqual(judgeElf('/app/hello', header(AARCH64, { type: 2 }), 'linux/amd64'), { ok: false, arch: 'arm64' });
    assert.deepEqual(judgeElf('/usr/bin/x', header(0x15, { endian: 'big' }), 'linux/ppc64le'), { ok: false, arch: 'ppc64' });
    // A foreign file under the platform's own multiarch directory is what the mislabel looks like.
    assert.equal(judgeElf('/usr/lib/aarch64-linux-gnu/libc.so.6', x86, 'linux/arm64').ok, false);
    // 32-bit ARM outside the companion directories, on arm64.
    assert.equal(judgeElf('/usr/bin/old', header(ARM, { bits: 32 }), 'linux/arm64').ok, false);
  });

  it('exempts relocatable objects, unknown machines and the known foreign-by-design paths', () => {
    assert.deepEqual(judgeElf('/usr/lib/crt1.o', header(X86_64, { type: 1 }), 'linux/arm64'), { ok: true, checked: false });
    assert.deepEqual(judgeElf('/lib/bpf/prog', header(0xf7), 'linux/arm64'), { ok: true, checked: false });
    const exempt = (path: string, h: ElfHeader = x86, platform = 'linux/arm64') => {
      const v = judgeElf(path, h, platform);
      return v.ok ? v.exempt : `mismatch ${v.arch}`;
    };
    assert.equal(exempt('/usr/lib/x86_64-linux-gnu/libc.so.6'), 'multiarch x86_64-linux-gnu');
    assert.equal(exempt('/usr/x86_64-linux-gnu/lib/libc.so.6'), 'multiarch x86_64-linux-gnu');
    assert.equal(exempt('/usr/lib/i386-linux-gnu/libc.so.6', header(0x03, { bits: 32 }), 'linux/amd64'), 'multiarch i386-linux-gnu');
    assert.equal(exempt('/usr/lib/i386-linux-gnu/libc.so.6'), 'mismatch amd64', 'the triplet must be the file’s own');
    assert.equal(exempt('/usr/share/qemu/edk2-x86_64.fd'), '/usr/share/');
    assert.equal(exempt('/lib/firmware/intel/ibt.sfi'), '/lib/firmware/');
    assert.equal(exempt('/usr/lib/firmware/x.bin'), '/usr/lib/firmware/');
    assert.equal(exempt('/usr/lib/go-1.22/src/debug/elf/testdata/go-relocation-test-gcc441-x86-64.obj'), 'testdata');
    assert.equal(exempt('/usr/lib/gcc-cross/x86_64-linux-gnu/12/cc1'), '/usr/lib/gcc-cross/');
    assert.equal(exempt('/usr/lib32/libc.so.6', header(0x03, { bits: 32 }), 'linux/amd64'), '32-bit companion');
    assert.equal(exempt('/usr/lib32/libc.so.6', header(ARM, { bits: 32 })), '32-bit companion');
    assert.equal(exempt('/usr/lib32/libc.so.6'), 'mismatch amd64', 'only the 32-bit sibling is a companion');
  });
});

describe('checkFilesystem: only the final filesystem counts', () => {
  const layer = (files: Record<string, Buffer | null>, extra: Partial<ElfLayer> = {}): ElfLayer => {
    const elfMap = new Map<string, ElfHeader>();
    for (const [path, head] of Object.entries(files)) if (head) elfMap.set(path, readElfHeader(head)!);
    return { adds: Object.keys(files).map((path) => ({ path, dir: false })), whiteouts: [], opaques: [], elf: elfMap, ...extra };
  };

  it('ignores foreign files a later layer deleted, replaced or hid with an opaque directory', () => {
    const base = layer({ '/usr/bin/dash': elf(X86_64), '/opt/tool/bin': elf(X86_64), '/srv/x': elf(X86_64), '/etc/passwd': null });
    const fix = layer({ '/usr/bin/dash': elf(AARCH64) }, { whiteouts: ['/srv/x'], opaques: ['/opt/tool'] });
    const result = checkFilesystem([base, fix], 'linux/arm64');
    assert.deepEqual(result, { files_checked: 1, files_exempt: 0, mismatches_total: 0, mismatches: [] });
  });

  it('lists mismatches by layer then path, capped, with the total and the layer that added each', () => {
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 60; i++) files[`/usr/bin/t${String(i).padStart(2, '0')}`] = elf(X86_64);
    const base = layer({ ...files, '/usr/lib/x86_64-linux-gnu/libc.so.6': elf(X86_64) });
    const app = layer({ '/app/hello': elf(X86_64, { type: 2 }), '/app/README': null });
    const result = checkFilesystem([base, app], 'linux/arm64', 5);
    assert.equal(result.mismatches_total, 61);
    assert.equal(result.files_checked, 62);
    assert.equal(result.files_exempt, 1);
    assert.deepEqual(
      result.mismatches.map((m) => [m.path, m.layer, m.machine, m.arch]),
      ['t00', 't01', 't02', 't03', 't04'].map((t) => [`/usr/bin/${t}`, 0, 'x86-64', 'amd64']),
    );
    assert.deepEqual(checkFilesystem([layer({ '/usr/bin/ok': elf(AARCH64) }), app], 'linux/arm64').mismatches, [
      { path: '/app/hello', machine: 'x86-64', arch: 'amd64', layer: 1 },
    ]);
  });
});

// A minimal ustar writer for layers in memory.
function tarHeader(path: string, size: number, type: string, linkpath = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(path, 0);
  h.write('0000755\0', 100);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.fill(0x20, 148, 156);
  h.write(type, 156);
  h.write(linkpath, 157);
  h.write('ustar\0' + '00', 257, 'binary');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}
function tar(entries: { path: string; data?: Buffer; type?: string; link?: string }[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    parts.push(tarHeader(e.path, data.length, e.type ?? '0', e.link), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  return Buffer.concat([...parts, Buffer.alloc(1024)]);
}
/** Splits a buffer into chunks of `size`, so heads straddle chunk boundaries. */
async function* chunks(buf: Buffer, size: number) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

describe('reading ELF heads from a layer stream', () => {
  const big = Buffer.concat([elf(X86_64, { type: 2 }), Buffer.alloc(3 * 1024 * 1024, 0x90)]);
  const layerTar = tar([
    { path: 'usr/', type: '5' },
    { path: 'usr/bin/tool', data: big },
    { path: 'usr/bin/tool-link', type: '1', link: 'usr/bin/tool' },
    { path: 'usr/bin/script', data: Buffer.from('#!/bin/sh\necho this is a shell script, not ELF\n') },
    { path: 'usr/bin/tiny', data: Buffer.from([0x7f, 0x45, 0x4c, 0x46]) },
    { path: 'usr/lib/libx.so.1', data: elf(AARCH64) },
    { path: 'usr/lib/.wh.gone' },
  ]);

  it('gives the first bytes of each regular file and skips the rest, across odd chunk boundaries', async () => {
    const heads: [string, number][] = [];
    for await (const entry of readTarEntries(chunks(layerTar, 333), { headBytes: 64 })) heads.push([entry.path, entry.head?.length ?? -1]);
    assert.deepEqual(heads, [
      ['usr/', -1],
      ['usr/bin/tool', 64],
      ['usr/bin/tool-link', -1],
      ['usr/bin/script', 47],
      ['usr/bin/tiny', 4],
      ['usr/lib/libx.so.1', 64],
      ['usr/lib/.wh.gone', -1],
    ]);
    const plain: string[] = [];
    for await (const entry of readTarEntries(chunks(layerTar, 333))) plain.push(entry.head ? 'head' : entry.path);
    assert.ok(!plain.includes('head'), 'no heads unless asked');
  });

  it('scanElfLayer records ELF headers of files and of hardlinks to them, and the whiteouts', async () => {
    const gz = gzipSync(layerTar);
    const digest = `sha256:${createHash('sha256').update(gz).digest('hex')}`;
    const scan = await scanElfLayer(Readable.from(chunks(gz, 1000)), {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest,
      size: gz.length,
    });
    assert.deepEqual([...scan.elf.keys()].sort(), ['/usr/bin/tool', '/usr/bin/tool-link', '/usr/lib/libx.so.1']);
    assert.equal(scan.elf.get('/usr/bin/tool-link')!.machine, X86_64);
    assert.deepEqual(scan.whiteouts, ['/usr/lib/gone']);
    const result = checkFilesystem([scan], 'linux/arm64');
    assert.deepEqual(
      result.mismatches.map((m) => m.path),
      ['/usr/bin/tool', '/usr/bin/tool-link'],
    );
    assert.equal(result.files_checked, 3);
  });
});
