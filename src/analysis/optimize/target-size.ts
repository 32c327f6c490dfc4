/** Sizes as people write them: `100MB`, `1.5GiB`, `800kB`, `512 MiB`, `2000000` (bytes). */
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
  k: 1e3,
  m: 1e6,
  g: 1e9,
};

export class InvalidSizeError extends Error {}

export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$/.exec(text);
  if (!m) throw new InvalidSizeError(`invalid size ${JSON.stringify(text)} (want e.g. 100MB, 1.5GiB, 800kB)`);
  const unit = m[2]!.toLowerCase() || 'b';
  const factor = UNITS[unit];
  if (!factor) throw new InvalidSizeError(`unknown size unit ${JSON.stringify(m[2])} (B, kB, MB, GB, TB, KiB, MiB, GiB, TiB)`);
  const bytes = Math.round(Number(m[1]) * factor);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new InvalidSizeError(`size ${JSON.stringify(text)} is out of range`);
  return bytes;
}

export interface TargetVerdict {
  target_bytes: number;
  current_bytes: number;
  met: boolean;
  gap_bytes: number;
  /** Suggestions (largest savings first) whose estimated savings together close the gap. */
  closing: string[];
}

export function evaluateTarget(
  targetBytes: number,
  currentBytes: number,
  suggestions: { id: string; estimated_savings_bytes: number | null }[],
): TargetVerdict {
  const gap = Math.max(0, currentBytes - targetBytes);
  const closing: string[] = [];
  let covered = 0;
  for (const s of [...suggestions]
    .filter((s) => (s.estimated_savings_bytes ?? 0) > 0)
    .sort((a, b) => b.estimated_savings_bytes! - a.estimated_savings_bytes!)) {
    if (covered >= gap) break;
    closing.push(s.id);
    covered += s.estimated_savings_bytes!;
  }
  return { target_bytes: targetBytes, current_bytes: currentBytes, met: gap === 0, gap_bytes: gap, closing };
}

/**
 * The target against rewrites that were built and measured: the smallest verified one
 * that meets it, or by how much even the smallest misses. Measured sizes beat estimates.
 */
export function evaluateMeasuredTarget(
  targetBytes: number,
  currentBytes: number,
  rewrites: { label: string; size_bytes: number }[],
): TargetVerdict & { note: string } {
  const gap = Math.max(0, currentBytes - targetBytes);
  const sorted = [...rewrites].sort((a, b) => a.size_bytes - b.size_bytes);
  // The largest rewrite that still fits: the least change that does it.
  const meets = sorted.filter((r) => r.size_bytes <= targetBytes).at(-1);
  const describe = (r: { label: string; size_bytes: number }) =>
    `${r.label}: ${r.size_bytes} bytes, ${currentBytes - r.size_bytes} saved (measured)`;
  if (gap === 0)
    return { target_bytes: targetBytes, current_bytes: currentBytes, met: true, gap_bytes: 0, closing: [], note: 'already met' };
  if (meets)
    return {
      target_bytes: targetBytes,
      current_bytes: currentBytes,
      met: false,
      gap_bytes: gap,
      closing: [describe(meets)],
      note: `${meets.label} meets it`,
    };
  const smallest = sorted[0];
  return {
    target_bytes: targetBytes,
    current_bytes: currentBytes,
    met: false,
    gap_bytes: gap,
    closing: smallest ? [describe(smallest)] : [],
    note: smallest
      ? `cannot be met by a verified rewrite: the smallest (${smallest.label}) is ${smallest.size_bytes - targetBytes} bytes over`
      : 'cannot be met: no rewrite was verified',
  };
}
