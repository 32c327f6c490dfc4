/** Hand-made tar archives for tests: node-tar will not create the hostile ones. */
export interface RawEntry {
  name: string;
  /** ustar typeflag: 0 file, 1 hard link, 2 symlink, 3 char device, 4 block device, 5 dir, 6 FIFO. */
  type: string;
  linkname?: string;
  content?: string;
  mode?: number;
}

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

/** One 512-byte ustar header, written by hand: node-tar will not create the hostile ones. */
export function ustarHeader(entry: RawEntry, size: number): Buffer {
  const block = Buffer.alloc(512);
  block.write(entry.name, 0, 100, 'utf8');
  block.write(octal(entry.mode ?? (entry.type === '5' ? 0o755 : 0o644), 8), 100);
  block.write(octal(0, 8), 108);
  block.write(octal(0, 8), 116);
  block.write(octal(size, 12), 124);
  block.write(octal(1_700_000_000, 12), 136);
  block.write(' '.repeat(8), 148); // the checksum is summed with its own field as spaces
  block.write(entry.type, 156);
  block.write(entry.linkname ?? '', 157, 100, 'utf8');
  block.write('ustar\0', 257);
  block.write('00', 263);
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(octal(sum, 7) + ' ', 148);
  return block;
}

export function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const entry of entries) {
    const content = Buffer.from(entry.content ?? '');
    blocks.push(ustarHeader(entry, content.length), content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** Upload bodies arrive in pieces; split so that headers straddle chunks. */
export async function* chunked(bytes: Buffer, size = 700): AsyncGenerator<Buffer> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}
