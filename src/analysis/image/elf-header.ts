/**
 * The few fields of an ELF header that say which machine a file is for, read from its
 * first bytes (the platform check captures 64 of them per file while streaming a layer).
 * Pure: no I/O.
 */

/** Enough for e_ident, e_type and e_machine; a full 64-bit header is 64 bytes. */
export const ELF_HEAD_MIN = 20;
export const ELF_HEAD_BYTES = 64;

export type ElfType = 'none' | 'relocatable' | 'executable' | 'shared' | 'core' | 'other';

export interface ElfHeader {
  bits: 32 | 64;
  endian: 'little' | 'big';
  type: ElfType;
  /** e_machine, e.g. 0x3e for x86-64. */
  machine: number;
}

const TYPES: Record<number, ElfType> = { 0: 'none', 1: 'relocatable', 2: 'executable', 3: 'shared', 4: 'core' };

/** The header of an ELF file, or undefined for anything else (scripts, data, a truncated header, an unknown class or byte order). */
export function readElfHeader(head: Uint8Array): ElfHeader | undefined {
  if (head.length < ELF_HEAD_MIN) return undefined;
  if (head[0] !== 0x7f || head[1] !== 0x45 || head[2] !== 0x4c || head[3] !== 0x46) return undefined;
  const bits = head[4] === 1 ? 32 : head[4] === 2 ? 64 : undefined;
  const endian = head[5] === 1 ? 'little' : head[5] === 2 ? 'big' : undefined;
  if (!bits || !endian) return undefined;
  const u16 = (at: number) => (endian === 'little' ? head[at]! | (head[at + 1]! << 8) : (head[at]! << 8) | head[at + 1]!);
  return { bits, endian, type: TYPES[u16(16)] ?? 'other', machine: u16(18) };
}

/** e_machine values of the platforms images are built for, with the name `file` prints. */
const MACHINES: Record<number, { name: string; arch: (h: ElfHeader) => string }> = {
  0x03: { name: 'Intel 80386', arch: () => '386' },
  0x08: { name: 'MIPS', arch: (h) => `mips${h.bits === 64 ? '64' : ''}${h.endian === 'little' ? 'le' : ''}` },
  0x14: { name: 'PowerPC', arch: () => 'ppc' },
  0x15: { name: 'PowerPC64', arch: (h) => (h.endian === 'little' ? 'ppc64le' : 'ppc64') },
  0x16: { name: 'IBM S/390', arch: (h) => (h.bits === 64 ? 's390x' : 's390') },
  0x28: { name: 'ARM', arch: () => 'arm' },
  // The x32 ABI (32-bit ELF for x86-64) runs on amd64 kernels: still amd64.
  0x3e: { name: 'x86-64', arch: () => 'amd64' },
  0xb7: { name: 'AArch64', arch: () => 'arm64' },
  0xf3: { name: 'RISC-V', arch: (h) => `riscv${h.bits}` },
  0x102: { name: 'LoongArch', arch: (h) => `loong${h.bits}` },
};

/** The OCI platform architecture an ELF file runs on, or undefined for a machine no image platform has. */
export function elfArch(header: ElfHeader): string | undefined {
  return MACHINES[header.machine]?.arch(header);
}

/** A readable machine: "x86-64", "AArch64", "ARM", or the number for one this table does not name. */
export function machineName(header: ElfHeader): string {
  const known = MACHINES[header.machine];
  if (!known) return `e_machine 0x${header.machine.toString(16)}`;
  const arch = known.arch(header);
  // Name the variant when the e_machine alone is ambiguous (ppc64 vs ppc64le, mips, 32/64-bit s390).
  return arch === '386' || arch === 'amd64' || arch === 'arm64' || arch === 'arm' ? known.name : `${known.name} (${arch})`;
}
