/**
 * What an ELF file asks of the dynamic loader: its interpreter (PT_INTERP), the libraries it
 * needs (DT_NEEDED) and where it says to look for them (DT_RUNPATH, DT_RPATH). The optimizer
 * uses it to work out the runtime libraries of a program built in a Dockerfile.
 *
 * Read through the program headers only, as the loader does: section headers are optional
 * and `strip` may remove them. Pure (no I/O); the input is untrusted image content, so every
 * offset and count is checked against the buffer, every loop is bounded by the buffer's size
 * or a fixed cap, and nothing throws.
 */
import { readElfHeader } from './elf-header.js';

export interface ElfDynamic {
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; undefined for static executables and most shared libraries. */
  interpreter?: string;
  /** DT_NEEDED sonames, in order. */
  needed: string[];
  /** DT_RUNPATH entries split on ':' ($ORIGIN kept as written). */
  runpath: string[];
  /** DT_RPATH entries (only meaningful when there is no DT_RUNPATH). */
  rpath: string[];
  /** No PT_DYNAMIC segment: a static executable. (A static-pie has one, with no DT_NEEDED.) */
  static: boolean;
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NULL = 0;
const DT_NEEDED = 1;
const DT_STRTAB = 5;
const DT_STRSZ = 10;
const DT_RPATH = 15;
const DT_RUNPATH = 29;

/** PATH_MAX: no soname, path list or interpreter the loader would accept is longer. */
const MAX_STRING = 4096;
/** Real objects have tens of dynamic entries; a cap keeps a hostile PT_DYNAMIC from costing much. */
const MAX_DYNAMIC_ENTRIES = 16384;
/** DT_NEEDED entries may all point at one long string; the decoded total is capped too. */
const MAX_STRING_BYTES = 256 * 1024;

interface Segment {
  type: number;
  offset: number;
  vaddr: number;
  filesz: number;
}

/** A reader over the file in its class and byte order; undefined from any read outside the buffer. */
class Reader {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    readonly is64: boolean,
    private readonly little: boolean,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  fits(offset: number, size: number): boolean {
    return Number.isSafeInteger(offset) && Number.isSafeInteger(size) && offset >= 0 && size >= 0 && offset + size <= this.bytes.length;
  }

  u16(at: number): number | undefined {
    return this.fits(at, 2) ? this.view.getUint16(at, this.little) : undefined;
  }

  u32(at: number): number | undefined {
    return this.fits(at, 4) ? this.view.getUint32(at, this.little) : undefined;
  }

  /** A 32- or 64-bit word. 64-bit values above 2^53 lose precision, but they lie past any buffer, so bounds checks still reject them. */
  word(at: number): number | undefined {
    if (!this.is64) return this.u32(at);
    if (!this.fits(at, 8)) return undefined;
    const lo = this.view.getUint32(at + (this.little ? 0 : 4), this.little);
    const hi = this.view.getUint32(at + (this.little ? 4 : 0), this.little);
    return hi * 2 ** 32 + lo;
  }

  /** The NUL-terminated string at `at`, read no further than `end`; undefined without a terminator. */
  cstring(at: number, end: number): string | undefined {
    const limit = Math.min(end, this.bytes.length, at + MAX_STRING + 1);
    if (!Number.isSafeInteger(at) || at < 0 || at >= limit) return undefined;
    const nul = this.bytes.subarray(at, limit).indexOf(0);
    if (nul < 0) return undefined;
    return new TextDecoder().decode(this.bytes.subarray(at, at + nul));
  }
}

/**
 * Parses a whole ELF file (32/64-bit, little/big endian). undefined for non-ELF or malformed input.
 * Never throws; every offset/count is bounds-checked; loops are bounded (a hostile file must not
 * make it spin or allocate much).
 */
export function readElfDynamic(bytes: Uint8Array): ElfDynamic | undefined {
  const header = readElfHeader(bytes);
  if (!header) return undefined;
  const r = new Reader(bytes, header.bits === 64, header.endian === 'little');
  const segments = programHeaders(r);
  if (!segments) return undefined;

  const result: ElfDynamic = { needed: [], runpath: [], rpath: [], static: true };
  const interp = segments.find((s) => s.type === PT_INTERP);
  if (interp) {
    result.interpreter = r.cstring(interp.offset, interp.offset + interp.filesz);
    if (result.interpreter === undefined) return undefined;
  }
  const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
  if (!dynamic) return result;
  result.static = false;
  return readDynamic(r, dynamic, segments, result);
}

/** The program header table, or undefined when it does not lie inside the file. */
function programHeaders(r: Reader): Segment[] | undefined {
  const phoff = r.word(r.is64 ? 32 : 28);
  const phentsize = r.u16(r.is64 ? 54 : 42);
  const phnum = r.u16(r.is64 ? 56 : 44);
  if (phoff === undefined || phentsize === undefined || phnum === undefined) return undefined;
  if (phnum === 0) return [];
  // The entry may be larger than the fields read (a future ABI), never smaller.
  if (phentsize < (r.is64 ? 56 : 32)) return undefined;
  // phnum is a u16, so this loop is bounded; the table must also fit in the file.
  if (!r.fits(phoff, phentsize * phnum)) return undefined;
  const segments: Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    // Fields read: p_type, p_offset, p_vaddr, p_filesz (64-bit puts p_flags second; 32-bit, p_paddr before p_filesz).
    const fields = r.is64
      ? [r.u32(at), r.word(at + 8), r.word(at + 16), r.word(at + 32)]
      : [r.u32(at), r.u32(at + 4), r.u32(at + 8), r.u32(at + 16)];
    const [type, offset, vaddr, filesz] = fields;
    if (type === undefined || offset === undefined || vaddr === undefined || filesz === undefined) return undefined;
    // A segment the loader maps that reaches past the end of the file: a truncated or forged file.
    if ((type === PT_LOAD || type === PT_DYNAMIC || type === PT_INTERP) && !r.fits(offset, filesz)) return undefined;
    segments.push({ type, offset, vaddr, filesz });
  }
  return segments;
}

/**
 * Fills needed/runpath/rpath from PT_DYNAMIC; undefined when a string it names cannot be read
 * (a partial list would under-report a closure).
 */
function readDynamic(r: Reader, dynamic: Segment, segments: Segment[], result: ElfDynamic): ElfDynamic | undefined {
  const entsize = r.is64 ? 16 : 8;
  // An array without DT_NULL ends with its segment (whose bounds programHeaders checked).
  const count = Math.min(Math.floor(dynamic.filesz / entsize), MAX_DYNAMIC_ENTRIES);

  const strings: { tag: number; offset: number }[] = [];
  let strtab: number | undefined;
  let strsz: number | undefined;
  for (let i = 0; i < count; i++) {
    const at = dynamic.offset + i * entsize;
    const tag = r.word(at);
    const value = r.word(at + entsize / 2);
    if (tag === undefined || value === undefined || tag === DT_NULL) break;
    if (tag === DT_NEEDED || tag === DT_RUNPATH || tag === DT_RPATH) strings.push({ tag, offset: value });
    else if (tag === DT_STRTAB) strtab = value;
    else if (tag === DT_STRSZ) strsz = value;
  }
  if (strings.length === 0) return result;

  const tableOffset = strtab === undefined ? undefined : fileOffset(strtab, segments);
  if (tableOffset === undefined || !r.fits(tableOffset, 1)) return undefined;
  const tableEnd = strsz === undefined ? r.bytes.length : Math.min(r.bytes.length, tableOffset + strsz);
  let budget = MAX_STRING_BYTES;
  for (const { tag, offset } of strings) {
    const text = r.cstring(tableOffset + offset, tableEnd);
    if (text === undefined) return undefined;
    budget -= text.length + 1;
    if (budget < 0) return undefined;
    if (tag === DT_NEEDED) result.needed.push(text);
    // glibc keeps one entry per tag, the last one read (as with DT_STRTAB above).
    else if (tag === DT_RUNPATH) result.runpath = text.split(':');
    else result.rpath = text.split(':');
  }
  return result;
}

/** The file offset of a virtual address, through the PT_LOAD segment that maps it from the file. */
function fileOffset(vaddr: number, segments: Segment[]): number | undefined {
  for (const s of segments) {
    if (s.type === PT_LOAD && vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz) return s.offset + (vaddr - s.vaddr);
  }
  return undefined;
}
