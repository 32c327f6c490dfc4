import { createHash } from 'node:crypto';

/**
 * BuildKit's own warnings from buildctl's rawjson stream (`warnings` of a SolveStatus,
 * client.VertexWarning in BuildKit v0.32.2): Dockerfile lint checks (`FromAsCasing`,
 * `JSONArgsRecommended`, …) and frontend checks such as `InvalidBaseImagePlatform`.
 * In JSON, `short` is base64 bytes ("Rule: message (line N)"), `detail` a list of base64
 * byte strings; `sourceInfo.data` holds the whole Dockerfile and is never kept.
 */
export interface BuildWarning {
  /** The lint rule, when the message starts with one (`FromAsCasing: …`). */
  rule?: string;
  /** Without the rule and the trailing `(line N)` of a lint message. */
  message: string;
  detail?: string;
  /** The rule's documentation page. */
  url?: string;
  /** 1-based line of the Dockerfile the warning points at. */
  line?: number;
  /** The vertex that reported it (a `step` event's id; lint warnings come from the Dockerfile's load step). */
  step_id?: string;
}

export interface RawWarning {
  vertex?: unknown;
  short?: unknown;
  detail?: unknown;
  url?: unknown;
  range?: unknown;
}

/**
 * A hostile Dockerfile can trigger a warning per line and per stage: only so
 * many are kept (and emitted as events), each clipped; the rest are only counted.
 */
export const MAX_WARNINGS = 100;
export const MAX_WARNING_BYTES = 1024;
const MAX_URL = 512;
/** Distinct warnings remembered for deduplication (counting beyond it may count repeats). */
const MAX_SEEN = 10_000;

const RULE = /^([A-Z][A-Za-z0-9]{1,63}): ([\s\S]*)$/;
const LINE_SUFFIX = / \(line \d+\)$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

export class BuildWarnings {
  private readonly kept: BuildWarning[] = [];
  private readonly seen = new Set<string>();
  private total = 0;

  /**
   * The new warnings among these. BuildKit v0.32.2 already sends a lint warning once for
   * all platforms of a build (checked with two); identical ones from other vertexes or
   * frontends, or a later BuildKit, are reported once all the same.
   */
  add(raw: unknown): BuildWarning[] {
    if (!Array.isArray(raw)) return [];
    const out: BuildWarning[] = [];
    for (const w of raw) {
      const warning = toWarning(w);
      if (!warning) continue;
      const key = createHash('sha256')
        .update(JSON.stringify([warning.rule, warning.message, warning.detail, warning.line]))
        .digest('base64');
      if (this.seen.has(key)) continue;
      if (this.seen.size < MAX_SEEN) this.seen.add(key);
      this.total++;
      if (this.kept.length >= MAX_WARNINGS) continue;
      this.kept.push(warning);
      out.push(warning);
    }
    return out;
  }

  /** What a build's result (or failure) reports: the warnings kept, and how many there were when more. */
  summary(): { warnings: BuildWarning[]; warnings_total?: number } {
    return { warnings: [...this.kept], ...(this.total > this.kept.length ? { warnings_total: this.total } : {}) };
  }
}

/** One VertexWarning as a BuildWarning; undefined for anything malformed or empty. */
export function toWarning(raw: unknown): BuildWarning | undefined {
  if (!raw || typeof raw !== 'object') return undefined;
  const w = raw as RawWarning;
  const short = clean(decode(w.short));
  if (!short) return undefined;
  const ruled = RULE.exec(short);
  const line = firstLine(w.range);
  // A lint message ends with its line (linter.LintFormatShort): it is the `line` field here.
  const message = clip(ruled ? ruled[2]!.replace(LINE_SUFFIX, '') : short);
  if (!message) return undefined;
  const detail = Array.isArray(w.detail) ? clip(clean(w.detail.map(decode).join('\n'), true)) : '';
  const url = typeof w.url === 'string' && w.url.length <= MAX_URL && /^https?:\/\/[^\s]+$/.test(w.url) ? w.url : undefined;
  return {
    ...(ruled ? { rule: ruled[1] } : {}),
    message,
    ...(detail ? { detail } : {}),
    ...(url ? { url } : {}),
    ...(line ? { line } : {}),
    ...(typeof w.vertex === 'string' && DIGEST.test(w.vertex) ? { step_id: w.vertex } : {}),
  };
}

/** Go's []byte in JSON is base64; anything else is not a warning's text. */
function decode(value: unknown): string {
  if (typeof value !== 'string' || value.length > 64 * MAX_WARNING_BYTES) return '';
  return Buffer.from(value, 'base64').toString('utf8');
}

/** No terminal escapes or other control characters reach a client (the CLI prints these); newlines only in details. */
function clean(text: string, multiline = false): string {
  const spaced = multiline ? text.replace(/\r\n|\t/g, (m) => (m === '\t' ? ' ' : '\n')) : text.replace(/[\r\n\t]+/g, ' ');
  return spaced.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '').trim();
}

/** At most MAX_WARNING_BYTES of UTF-8, cut at a character boundary, marked with `…`. */
export function clip(text: string): string {
  if (Buffer.byteLength(text) <= MAX_WARNING_BYTES) return text;
  let bytes = 0;
  let out = '';
  for (const ch of text) {
    bytes += Buffer.byteLength(ch);
    if (bytes > MAX_WARNING_BYTES - 3) break;
    out += ch;
  }
  return `${out}…`;
}

function firstLine(range: unknown): number | undefined {
  if (!Array.isArray(range)) return undefined;
  const line = (range[0] as { start?: { line?: unknown } } | undefined)?.start?.line;
  return typeof line === 'number' && Number.isInteger(line) && line > 0 ? line : undefined;
}
