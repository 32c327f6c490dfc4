import { posix } from 'node:path';

/**
 * .dockerignore as BuildKit reads it: the file's lines as moby/patternmatcher's
 * ignorefile.ReadAll gives them, and patterns matched as its PatternMatcher does (the
 * same cleaning, the same regexp translation, the same exact/prefix/suffix shortcuts,
 * last matching pattern wins, a pattern matching a parent directory matches what is
 * under it). Written from that behaviour, not ported: the CLI must drop exactly what
 * the server's BuildKit would drop, never a file it would keep (a COPY would then fail),
 * and @balena/dockerignore (the npm port of an older moby) matches case-insensitively
 * and passes `+ ( ) | { }` through as regexp syntax.
 */
export class DockerignoreError extends Error {}

/** Go's filepath.Clean for slash paths: "" is ".", no trailing slash, `.`/`..` resolved. */
export function cleanPath(path: string): string {
  if (path === '') return '.';
  const cleaned = posix.normalize(path);
  return cleaned.length > 1 && cleaned.endsWith('/') ? cleaned.slice(0, -1) : cleaned;
}

/** The patterns of a .dockerignore file, as ignorefile.ReadAll returns them. */
export function readPatterns(text: string): string[] {
  const patterns: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  for (const line of lines) {
    // A comment only in column 1; ` # x` is a pattern.
    if (line.startsWith('#')) continue;
    let pattern = line.trim();
    if (!pattern) continue;
    const invert = pattern.startsWith('!');
    if (invert) pattern = pattern.slice(1).trim();
    if (pattern) {
      pattern = cleanPath(pattern);
      // Relative to the context root: `/foo` is `foo`.
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    patterns.push(invert ? `!${pattern}` : pattern);
  }
  return patterns;
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';
const ESCAPE = new Set('.+()|{}$');

export class Pattern {
  readonly exclusion: boolean;
  /** The cleaned pattern without its `!`. */
  readonly text: string;
  private readonly type: MatchType;
  private readonly regexp?: RegExp;

  constructor(raw: string) {
    let p = cleanPath(raw.trim());
    this.exclusion = p.startsWith('!');
    if (this.exclusion) {
      if (p.length === 1) throw new DockerignoreError('illegal exclusion pattern: "!"');
      p = p.slice(1);
    }
    checkSyntax(p);
    this.text = p;
    const { type, source } = translate(p);
    this.type = type;
    if (type === 'regexp') {
      try {
        this.regexp = new RegExp(source);
      } catch {
        throw new DockerignoreError(`syntax error in pattern ${JSON.stringify(raw)}`);
      }
    }
  }

  matches(path: string): boolean {
    switch (this.type) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(this.text.slice(0, -2));
      case 'suffix': {
        const suffix = this.text.slice(2);
        // `**/foo` matches `foo` itself too.
        return path.endsWith(suffix) || (suffix.startsWith('/') && path === suffix.slice(1));
      }
      case 'regexp':
        return this.regexp!.test(path);
    }
  }
}

/** The pattern as a regexp (or a cheaper exact, prefix or suffix test), as patternmatcher compiles it. */
function translate(pattern: string): { type: MatchType; source: string } {
  let source = '^';
  let type: MatchType = 'exact';
  const chars = [...pattern];
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    const first = i === 0;
    if (ch === '*' && chars[i + 1] === '*') {
      i++;
      if (chars[i + 1] === '/') i++;
      if (i + 1 >= chars.length) {
        if (type === 'exact') type = 'prefix';
        else {
          source += '.*';
          type = 'regexp';
        }
      } else {
        // Any number of directories, none included.
        source += '(.*/)?';
        type = 'regexp';
      }
      if (first) type = 'suffix';
    } else if (ch === '*') {
      source += '[^/]*';
      type = 'regexp';
    } else if (ch === '?') {
      source += '[^/]';
      type = 'regexp';
    } else if (ESCAPE.has(ch)) {
      source += `\\${ch}`;
    } else if (ch === '\\') {
      if (i + 1 < chars.length) {
        source += `\\${chars[++i]}`;
        type = 'regexp';
      } else source += '\\\\';
    } else if (ch === '[' || ch === ']') {
      source += ch;
      type = 'regexp';
    } else source += ch;
  }
  return { type, source: `${source}$` };
}

/** What Go's filepath.Match refuses as ErrBadPattern: an unclosed or empty class, a bad range, a trailing `\`. */
function checkSyntax(pattern: string): void {
  const bad = () => new DockerignoreError(`syntax error in pattern ${JSON.stringify(pattern)}`);
  const chars = [...pattern];
  let i = 0;
  // One class member, `\`-escaped or not; `-` and `]` must be escaped there.
  const classChar = (): string => {
    let ch = chars[i];
    if (ch === '\\') ch = chars[++i];
    if (ch === undefined || ch === '-' || ch === ']') throw bad();
    i++;
    return ch;
  };
  for (; i < chars.length; i++) {
    if (chars[i] === '\\') {
      if (++i >= chars.length) throw bad();
    } else if (chars[i] === '[') {
      i++;
      if (chars[i] === '^') i++;
      for (let items = 0; ; items++) {
        if (i >= chars.length) throw bad();
        if (chars[i] === ']' && items > 0) break;
        const lo = classChar();
        if (chars[i] === '-') {
          i++;
          if (classChar() < lo) throw bad();
        }
      }
    }
  }
}

/** The result of matching a directory, handed to its children (MatchesUsingParentResults). */
export type ParentMatches = readonly boolean[];

export class PatternMatcher {
  readonly patterns: Pattern[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.filter((p) => p.trim() !== '').map((p) => new Pattern(p));
  }

  /** Some pattern is a `!` exception. */
  get hasExclusions(): boolean {
    return this.patterns.some((p) => p.exclusion);
  }

  /** Whether `path` (slash-separated, relative to the context) is excluded, parents' matches included. */
  matchesOrParentMatches(path: string): boolean {
    return this.matchesUsingParentResults(path).excluded;
  }

  /**
   * As BuildKit's walker asks while it descends: a pattern that matched the parent
   * directory counts as matching its children without testing them again; without
   * the parent's answers every ancestor is tested.
   */
  matchesUsingParentResults(path: string, parent?: ParentMatches): { excluded: boolean; matches: boolean[] } {
    let excluded = false;
    const matches = this.patterns.map(() => false);
    const slash = path.lastIndexOf('/');
    const parentDirs = slash < 0 ? [] : path.slice(0, slash).split('/');
    this.patterns.forEach((pattern, i) => {
      let match = parent?.[i] ?? false;
      if (!match) {
        // An exception only matters once something is excluded, an exclusion only until then.
        if (pattern.exclusion !== excluded) return;
        match = pattern.matches(path);
        if (!match && !parent) {
          for (let n = 1; n <= parentDirs.length && !match; n++) match = pattern.matches(parentDirs.slice(0, n).join('/'));
        }
      }
      matches[i] = match;
      if (match) excluded = !pattern.exclusion;
    });
    return { excluded, matches };
  }
}
