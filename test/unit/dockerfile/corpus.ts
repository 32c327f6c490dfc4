import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The Dockerfile corpus in test/fixtures/dockerfiles. Each file starts with comment
 * lines that state what the analyzer must say about it:
 *   # expect: id, id        every non-info finding (the complete set); info ids optional
 *   # expect-not: id, id    must not be reported (the way to test info rules negatively)
 *   # dockerignore: missing  analyse as if the context had no .dockerignore
 *   # options-ignore: id     pass options.ignore
 * A sibling `<name>.dockerignore` is passed as the .dockerignore content.
 */
export interface CorpusCase {
  name: string;
  text: string;
  expect: Set<string>;
  expectNot: Set<string>;
  dockerignore: string | null | undefined;
  ignore: string[];
}

// Compiled to dist/test/unit/dockerfile/; the fixtures stay in the source tree.
export const CORPUS_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../../../test/fixtures/dockerfiles');

function header(text: string, key: string): string[] | null {
  let found: string[] | null = null;
  for (const line of text.split('\n')) {
    if (!line.startsWith('#')) break;
    const m = new RegExp(`^#\\s*${key}:(.*)$`).exec(line);
    if (m)
      found = [
        ...(found ?? []),
        ...m[1]!
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
      ];
  }
  return found;
}

export function loadCorpus(dir = CORPUS_DIR): CorpusCase[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.Dockerfile'))
    .sort()
    .map((file) => {
      const text = readFileSync(join(dir, file), 'utf8');
      const sibling = join(dir, file.replace(/\.Dockerfile$/, '.dockerignore'));
      const expect = header(text, 'expect');
      if (expect === null) throw new Error(`${file}: no "# expect:" header`);
      let dockerignore: string | null | undefined;
      if (existsSync(sibling)) dockerignore = readFileSync(sibling, 'utf8');
      else if (header(text, 'dockerignore')?.includes('missing')) dockerignore = null;
      return {
        name: file,
        text,
        expect: new Set(expect),
        expectNot: new Set(header(text, 'expect-not') ?? []),
        dockerignore,
        ignore: header(text, 'options-ignore') ?? [],
      };
    });
}

export interface Score {
  tp: number;
  fp: number;
  fn: number;
}

export const precision = (s: Score): number | null => (s.tp + s.fp === 0 ? null : s.tp / (s.tp + s.fp));
export const recall = (s: Score): number | null => (s.tp + s.fn === 0 ? null : s.tp / (s.tp + s.fn));
