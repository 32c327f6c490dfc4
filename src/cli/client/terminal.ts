/**
 * Where the CLI writes: results to stdout, progress and errors to stderr, so
 * `stevedore scan … --json | jq` sees JSON only. Colour only on a terminal and without
 * NO_COLOR (https://no-color.org).
 */
export interface Paint {
  // Function-typed properties, not methods: renderers pass them around unbound.
  bold: (s: string) => string;
  dim: (s: string) => string;
  red: (s: string) => string;
  green: (s: string) => string;
  yellow: (s: string) => string;
  blue: (s: string) => string;
  cyan: (s: string) => string;
}

const code = (open: number, close: number) => (s: string) => `\u001b[${open}m${s}\u001b[${close}m`;

export const COLOR: Paint = {
  bold: code(1, 22),
  dim: code(2, 22),
  red: code(31, 39),
  green: code(32, 39),
  yellow: code(33, 39),
  blue: code(34, 39),
  cyan: code(36, 39),
};
const identity = (s: string) => s;
export const PLAIN: Paint = {
  bold: identity,
  dim: identity,
  red: identity,
  green: identity,
  yellow: identity,
  blue: identity,
  cyan: identity,
};

export function paintFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): Paint {
  return stream.isTTY && env.NO_COLOR === undefined ? COLOR : PLAIN;
}

export interface Output {
  /** Results: summaries, tables, JSON. */
  out: (line: string) => void;
  /** Progress, warnings and errors. */
  err: (line: string) => void;
  /** Colours for each stream. */
  paintOut: Paint;
  paintErr: Paint;
}

export function processOutput(): Output {
  return {
    out: (line) => void process.stdout.write(line + '\n'),
    err: (line) => void process.stderr.write(line + '\n'),
    paintOut: paintFor(process.stdout),
    paintErr: paintFor(process.stderr),
  };
}

/** Left-aligned columns; the widest cell sets each column's width. */
export function table(rows: string[][], gap = 2): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visibleLength(cell))));
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell) + gap)))
      .join('')
      .trimEnd(),
  );
}

const visibleLength = (s: string) => s.replace(/\u001b\[\d+m/g, '').length;

export function formatBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '-';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v < 10 ? 2 : 1)}${units[u]}`;
}

export function formatSeconds(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`;
}
