import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { readElfDynamic } from '../../src/analysis/image/elf-dynamic.js';

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

interface Spec {
  bits?: 32 | 64;
  endian?: 'little' | 'big';
  interp?: string;
  needed?: string[];
  runpath?: string;
  rpath?: string;
  /** Leave out PT_DYNAMIC (a static executable). */
  noDynamic?: boolean;
  /** Leave out the DT_NULL that ends the dynamic array. */
  noNull?: boolean;
  /** Repeat each DT_NEEDED entry this many times (one string, many references). */
  repeat?: number;
}

/**
 * A minimal ELF file: header, program headers (PT_LOAD mapping the whole file at a base
 * address unlike its offsets, so DT_STRTAB must be translated; PT_INTERP; PT_DYNAMIC), the
 * interpreter string, a string table and the dynamic array. Returns where each part lies.
 */
function buildElf(spec: Spec = {}) {
  const { bits = 64, endian = 'little' } = spec;
  const is64 = bits === 64;
  const word = is64 ? 8 : 4;
  const ehsize = is64 ? 64 : 52;
  const phentsize = is64 ? 56 : 32;
  const base = is64 ? 0x400000 : 0x8048000;

  let strtab = '\0';
  const add = (s: string) => {
    const at = Buffer.byteLength(strtab);
    strtab += `${s}\0`;
    return at;
  };
  const dyn: [number, number][] = [];
  for (const n of spec.needed ?? []) {
    const at = add(n);
    for (let i = 0; i < (spec.repeat ?? 1); i++) dyn.push([DT_NEEDED, at]);
  }
  if (spec.runpath !== undefined) dyn.push([DT_RUNPATH, add(spec.runpath)]);
  if (spec.rpath !== undefined) dyn.push([DT_RPATH, add(spec.rpath)]);

  const phdrs: number[] = [PT_LOAD];
  if (spec.interp !== undefined) phdrs.push(PT_INTERP);
  if (!spec.noDynamic) phdrs.push(PT_DYNAMIC);
  const phoff = ehsize;
  const interpOff = phoff + phdrs.length * phentsize;
  const interpSize = spec.interp === undefined ? 0 : Buffer.byteLength(spec.interp) + 1;
  const strtabOff = interpOff + interpSize;
  const strtabSize = Buffer.byteLength(strtab);
  const dynOff = Math.ceil((strtabOff + strtabSize) / word) * word;
  dyn.push([DT_STRTAB, base + strtabOff], [DT_STRSZ, strtabSize]);
  if (!spec.noNull) dyn.push([0, 0]);
  const dynSize = dyn.length * 2 * word;
  const size = dynOff + dynSize;

  const b = Buffer.alloc(size);
  const le = endian === 'little';
  const u16 = (at: number, v: number) => (le ? b.writeUInt16LE(v, at) : b.writeUInt16BE(v, at));
  const u32 = (at: number, v: number) => (le ? b.writeUInt32LE(v, at) : b.writeUInt32BE(v, at));
  const w = (at: number, v: number) => (is64 ? (le ? b.writeBigUInt64LE(BigInt(v), at) : b.writeBigUInt64BE(BigInt(v), at)) : u32(at, v));

  b.set([0x7f, 0x45, 0x4c, 0x46, is64 ? 2 : 1, le ? 1 : 2, 1]);
  u16(16, 2); // ET_EXEC
  u16(18, is64 ? 0x3e : 0x08);
  u32(20, 1);
  w(is64 ? 32 : 28, phoff);
  u16(is64 ? 52 : 40, ehsize);
  u16(is64 ? 54 : 42, phentsize);
  u16(is64 ? 56 : 44, phdrs.length);

  const segment: Record<number, [number, number]> = {
    [PT_LOAD]: [0, size],
    [PT_INTERP]: [interpOff, interpSize],
    [PT_DYNAMIC]: [dynOff, dynSize],
  };
  phdrs.forEach((type, i) => {
    const at = phoff + i * phentsize;
    const [offset, filesz] = segment[type]!;
    u32(at, type);
    if (is64) {
      [offset, base + offset, base + offset, filesz, filesz].forEach((v, k) => w(at + 8 + 8 * k, v));
    } else {
      [offset, base + offset, base + offset, filesz, filesz].forEach((v, k) => u32(at + 4 + 4 * k, v));
    }
  });
  if (spec.interp !== undefined) b.write(spec.interp, interpOff);
  b.write(strtab, strtabOff, 'latin1');
  dyn.forEach(([tag, val], i) => {
    w(dynOff + i * 2 * word, tag);
    w(dynOff + i * 2 * word + word, val);
  });
  return { bytes: b, phoff, phentsize, dynOff, strtabOff, w, u16 };
}

const LD64 = '/lib64/ld-linux-x86-64.so.2';

describe('readElfDynamic: synthetic files', () => {
  it('reads a 64-bit little-endian executable', () => {
    const { bytes } = buildElf({ interp: LD64, needed: ['libm.so.6', 'libc.so.6'], runpath: '$ORIGIN/../lib:/opt/x/lib' });
    assert.deepEqual(readElfDynamic(bytes), {
      interpreter: LD64,
      needed: ['libm.so.6', 'libc.so.6'],
      runpath: ['$ORIGIN/../lib', '/opt/x/lib'],
      rpath: [],
      static: false,
    });
  });

  it('reads a 32-bit big-endian executable with DT_RPATH', () => {
    const { bytes } = buildElf({
      bits: 32,
      endian: 'big',
      interp: '/lib/ld.so.1',
      needed: ['libz.so.1', 'libc.so.6'],
      rpath: '/usr/local/lib',
    });
    assert.deepEqual(readElfDynamic(bytes), {
      interpreter: '/lib/ld.so.1',
      needed: ['libz.so.1', 'libc.so.6'],
      runpath: [],
      rpath: ['/usr/local/lib'],
      static: false,
    });
  });

  it('tells a static executable and a shared library apart', () => {
    assert.deepEqual(readElfDynamic(buildElf({ noDynamic: true }).bytes), { needed: [], runpath: [], rpath: [], static: true });
    // A shared library: PT_DYNAMIC but no PT_INTERP.
    assert.deepEqual(readElfDynamic(buildElf({ bits: 32, needed: ['libc.so.6'] }).bytes), {
      needed: ['libc.so.6'],
      runpath: [],
      rpath: [],
      static: false,
    });
  });

  it('keeps an empty DT_RUNPATH, whose presence still turns DT_RPATH off', () => {
    const parsed = readElfDynamic(buildElf({ needed: ['libc.so.6'], runpath: '', rpath: '/r' }).bytes)!;
    assert.deepEqual([parsed.runpath, parsed.rpath], [[''], ['/r']]);
  });

  it('reads up to the end of a dynamic segment that has no DT_NULL', () => {
    const parsed = readElfDynamic(buildElf({ needed: ['liba.so', 'libb.so'], noNull: true }).bytes);
    assert.deepEqual(parsed?.needed, ['liba.so', 'libb.so']);
  });
});

describe('readElfDynamic: malformed input', () => {
  it('answers undefined for non-ELF input', () => {
    assert.equal(readElfDynamic(new Uint8Array(0)), undefined);
    assert.equal(readElfDynamic(Buffer.from('#!/bin/sh\nexec true\n'.repeat(10))), undefined);
    // A valid e_ident followed by too little for the program header fields.
    assert.equal(readElfDynamic(buildElf({ needed: ['libc.so.6'] }).bytes.subarray(0, 40)), undefined);
  });

  it('answers undefined for every truncation of a file', () => {
    for (const spec of [
      { interp: LD64, needed: ['libc.so.6'], runpath: '/x' },
      { bits: 32 as const, endian: 'big' as const, needed: ['libc.so.6'] },
    ]) {
      const { bytes } = buildElf(spec);
      assert.ok(readElfDynamic(bytes));
      for (let n = 0; n < bytes.length; n++) {
        // PT_LOAD and PT_DYNAMIC say the file is longer: a prefix is a truncated file.
        assert.equal(readElfDynamic(bytes.subarray(0, n)), undefined, `prefix of ${n} bytes`);
      }
    }
  });

  it('rejects program headers outside the file, a huge phnum and a too-small phentsize', () => {
    const past = buildElf({ needed: ['libc.so.6'] });
    past.w(32, past.bytes.length);
    assert.equal(readElfDynamic(past.bytes), undefined, 'phoff at the end of the file');
    past.w(32, 2 ** 60);
    assert.equal(readElfDynamic(past.bytes), undefined, 'phoff past 2^53');

    const huge = buildElf({ needed: ['libc.so.6'] });
    huge.u16(56, 0xffff);
    assert.equal(readElfDynamic(huge.bytes), undefined);

    const small = buildElf({ bits: 32, needed: ['libc.so.6'] });
    small.u16(42, 16);
    assert.equal(readElfDynamic(small.bytes), undefined);
  });

  it('rejects a string table that is not mapped or a string past its end', () => {
    // The DT_STRTAB entry is the second-to-last entry before DT_NULL; DT_NEEDED comes first.
    const unmapped = buildElf({ needed: ['libc.so.6'] });
    unmapped.w(unmapped.dynOff + 16 + 8, 0x7fff0000);
    assert.equal(readElfDynamic(unmapped.bytes), undefined);

    const pastEnd = buildElf({ needed: ['libc.so.6'] });
    pastEnd.w(pastEnd.dynOff + 8, 1 << 20);
    assert.equal(readElfDynamic(pastEnd.bytes), undefined);

    // Inside the file but past DT_STRSZ.
    const pastSize = buildElf({ needed: ['libc.so.6'] });
    pastSize.w(pastSize.dynOff + 8, pastSize.dynOff - pastSize.strtabOff);
    assert.equal(readElfDynamic(pastSize.bytes), undefined);
  });

  it('rejects a PT_INTERP or PT_DYNAMIC outside the file', () => {
    const interp = buildElf({ interp: LD64 });
    interp.w(interp.phoff + interp.phentsize + 8, 1 << 30);
    assert.equal(readElfDynamic(interp.bytes), undefined);

    const dyn = buildElf({ needed: ['libc.so.6'] });
    dyn.w(dyn.phoff + dyn.phentsize + 8, dyn.bytes.length + 8);
    assert.equal(readElfDynamic(dyn.bytes), undefined);
  });

  it('caps what a hostile dynamic array can make it decode', () => {
    // 100 000 DT_NEEDED entries, all naming one 4 000-byte string: 400 MB if each were decoded.
    const many = buildElf({ needed: ['l'.repeat(4000)], repeat: 100_000 });
    assert.equal(readElfDynamic(many.bytes), undefined);
    // The same shape at a real program's scale is fine.
    assert.equal(readElfDynamic(buildElf({ needed: ['l'.repeat(4000)], repeat: 20 }).bytes)?.needed.length, 20);

    // A string with no terminator within PATH_MAX.
    const unterminated = buildElf({ needed: ['x'.repeat(5000)] });
    assert.equal(readElfDynamic(unterminated.bytes), undefined);
  });

  it('never throws on corrupted bytes', () => {
    const { bytes } = buildElf({ interp: LD64, needed: ['libc.so.6', 'libm.so.6'], runpath: '$ORIGIN' });
    let seed = 1;
    const next = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let round = 0; round < 2000; round++) {
      const copy = Buffer.from(bytes);
      for (let k = 0; k < 4; k++) copy[next() % copy.length] = next() & 0xff;
      readElfDynamic(copy);
    }
  });
});

describe('readElfDynamic: host binaries', () => {
  it('reads /usr/bin/ls', (t) => {
    if (!existsSync('/usr/bin/ls') || process.arch !== 'x64') return t.skip('no x86-64 /usr/bin/ls on this host');
    const parsed = readElfDynamic(readFileSync('/usr/bin/ls'))!;
    assert.equal(parsed.interpreter, LD64);
    assert.ok(parsed.needed.includes('libc.so.6'), parsed.needed.join(' '));
    assert.equal(parsed.static, false);
  });

  it('reads glibc itself', (t) => {
    const libc = '/lib/x86_64-linux-gnu/libc.so.6';
    if (!existsSync(libc)) return t.skip(`no ${libc} on this host`);
    const parsed = readElfDynamic(readFileSync(libc))!;
    assert.ok(parsed.needed.includes('ld-linux-x86-64.so.2'), parsed.needed.join(' '));
    assert.equal(parsed.static, false);
  });
});
