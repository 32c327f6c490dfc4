/**
 * Version ranges for `deny_packages`. Package versions in one image come from several
 * ecosystems (Debian `1:1.34+dfsg-1.2+deb12u1`, npm `4.17.20`, Python `2.0.0rc1`), so
 * no one ecosystem's rules apply: versions are compared segment by segment, which
 * agrees with semver and with dpkg for the common shapes (see compareVersions).
 *
 * A range is `||`-separated alternatives, each a space-separated list of comparators
 * (`>=1.2 <1.4`), a comparator being `<`, `<=`, `>`, `>=` or `=` and a version; a bare
 * version is an exact match; `*` matches every version.
 */

const OPS = ['<=', '>=', '<', '>', '='] as const;
type Op = (typeof OPS)[number];
interface Comparator {
  op: Op;
  version: string;
}
export type VersionRange = Comparator[][];

const VERSION = /^[A-Za-z0-9][A-Za-z0-9.+~:_-]{0,127}$/;
export const MAX_RANGE_LENGTH = 256;

export class InvalidRangeError extends Error {}

export function parseRange(text: string): VersionRange {
  const trimmed = text.trim();
  if (!trimmed || trimmed.length > MAX_RANGE_LENGTH) throw new InvalidRangeError(`must be 1-${MAX_RANGE_LENGTH} characters`);
  if (trimmed === '*') return [[]];
  return trimmed.split('||').map((alternative) => {
    const parts = alternative.trim().split(/\s+/).filter(Boolean);
    if (!parts.length) throw new InvalidRangeError('an empty alternative between ||');
    return parts.map((part) => {
      const op = OPS.find((o) => part.startsWith(o));
      const version = op ? part.slice(op.length) : part;
      if (!VERSION.test(version))
        throw new InvalidRangeError(`${JSON.stringify(part.slice(0, 64))} is not a comparator (<, <=, >, >=, = or none, then a version)`);
      return { op: op ?? '=', version };
    });
  });
}

export function satisfies(version: string, range: VersionRange): boolean {
  return range.some((all) =>
    all.every(({ op, version: bound }) => {
      const c = compareVersions(version, bound);
      return op === '<' ? c < 0 : op === '<=' ? c <= 0 : op === '>' ? c > 0 : op === '>=' ? c >= 0 : c === 0;
    }),
  );
}

/**
 * Segment-wise order: an optional numeric epoch (`1:`) first, a leading `v` ignored, then
 * runs of digits (compared as numbers) and runs of other characters (compared as text,
 * with `~` before everything and a missing run, as dpkg orders `1.0~rc1` before `1.0`). A
 * semver pre-release (`1.0.0-rc.1`, `-` followed by a letter) sorts before its release.
 * Limits: build metadata (`+build`) takes part in the order, and ecosystem-specific rules
 * (PEP 440 post-releases, Maven qualifiers) are not modelled.
 */
export function compareVersions(a: string, b: string): number {
  const [ea, ra] = splitEpoch(a);
  const [eb, rb] = splitEpoch(b);
  if (ea !== eb) return ea < eb ? -1 : 1;
  const ta = tokens(ra);
  const tb = tokens(rb);
  for (let i = 0; i < Math.max(ta.length, tb.length); i++) {
    const x = ta[i];
    const y = tb[i];
    if (x === y) continue;
    if (x === undefined) return lowerThanNothing(y!) ? 1 : -1;
    if (y === undefined) return lowerThanNothing(x) ? -1 : 1;
    const nx = /^\d+$/.test(x);
    const ny = /^\d+$/.test(y);
    if (nx && ny) {
      const d = BigInt(x) - BigInt(y);
      if (d !== 0n) return d < 0n ? -1 : 1;
      continue;
    }
    if (nx !== ny) return nx ? 1 : -1;
    const c = compareText(x, y);
    if (c) return c;
  }
  return 0;
}

/** What sorts before the end of a version: dpkg's `~`, and a semver pre-release (`-rc1`, `-alpha`). */
const lowerThanNothing = (token: string) => token.startsWith('~') || /^-[A-Za-z]/.test(token);

function splitEpoch(v: string): [number, string] {
  const m = /^(\d+):(.*)$/.exec(v);
  const rest = m ? m[2]! : v;
  return [m ? Number(m[1]) : 0, rest.replace(/^v(?=\d)/, '')];
}

/** `1.34+dfsg-1.2` → 1 . 34 +dfsg- 1 . 2 (separators stay part of the text runs). */
function tokens(v: string): string[] {
  return v.match(/\d+|[^\d]+/g) ?? [];
}

/** dpkg's character order: `~` first, then letters, then the other symbols. */
function compareText(x: string, y: string): number {
  const rank = (ch: string | undefined) =>
    ch === undefined ? 0 : ch === '~' ? -1 : /[A-Za-z]/.test(ch) ? ch.charCodeAt(0) : ch.charCodeAt(0) + 256;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = rank(x[i]) - rank(y[i]);
    if (d) return d < 0 ? -1 : 1;
  }
  return 0;
}
