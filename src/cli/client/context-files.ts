import { lstat, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DockerignoreError, PatternMatcher, readPatterns, type ParentMatches } from './dockerignore.js';
import { UsageError } from './http.js';

/**
 * Which paths of a context directory go into the upload: what BuildKit's context
 * walker (fsutil) would send with the same ignore file, plus the files BuildKit reads
 * through its own channels whatever the patterns say (the Dockerfile and the ignore
 * files), so the server's BuildKit finds them and applies the same patterns again.
 */
export interface ContextSelection {
  /** Relative slash paths, parents before children, for `tar.create` without recursion. */
  paths: string[];
  /** The ignore file applied, relative to the context; undefined when there is none. */
  ignoreFile?: string;
  /** Paths left out (an excluded directory counts once, not its contents). */
  excluded: number;
}

/**
 * The ignore file BuildKit applies: `<Dockerfile>.dockerignore` beside a Dockerfile
 * inside the context, else the context's `.dockerignore`. An inline Dockerfile (from
 * outside the context) lands on the server without its neighbours: `.dockerignore` only.
 */
export function ignoreFileCandidates(dockerfilePath: string | undefined): string[] {
  return dockerfilePath === undefined ? ['.dockerignore'] : [`${dockerfilePath}.dockerignore`, '.dockerignore'];
}

async function readIgnoreFile(dir: string, candidates: string[]): Promise<{ file?: string; patterns: string[] }> {
  for (const file of candidates) {
    const text = await readFile(join(dir, file), 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') return undefined;
      throw new UsageError(`${join(dir, file)}: ${err.message}`);
    });
    if (text !== undefined) return { file, patterns: readPatterns(text) };
  }
  return { patterns: [] };
}

/** The pattern without a trailing `/**` or `/*`, as fsutil's shortcut compares it. */
const withoutTrailingGlob = (text: string) => text.replace(/\/\*\*$/, '').replace(/\/\*$/, '');

/**
 * Lists the context. `dockerfilePath` is the Dockerfile's path inside the context
 * (default `Dockerfile`), or undefined when it is sent inline.
 */
export async function selectContext(dir: string, dockerfilePath: string | undefined = 'Dockerfile'): Promise<ContextSelection> {
  const { file: ignoreFile, patterns } = await readIgnoreFile(dir, ignoreFileCandidates(dockerfilePath));
  let matcher: PatternMatcher;
  try {
    matcher = new PatternMatcher(patterns);
  } catch (err) {
    if (err instanceof DockerignoreError) throw new UsageError(`${join(dir, ignoreFile ?? '.dockerignore')}: ${err.message}`);
    throw err;
  }
  // Kept whatever the patterns say: BuildKit reads them outside the filtered context
  // (and the server's optimize reads the context's `.dockerignore` for its rules).
  const alwaysSent = new Set([ignoreFile, dockerfilePath, '.dockerignore'].filter((p): p is string => p !== undefined));
  const exceptions = matcher.patterns.filter((p) => p.exclusion);
  // fsutil skips an excluded directory unless an exception could reach inside it; it
  // can only tell when the exceptions are plain paths (no wildcard before the end).
  const onlyPrefixExceptions = exceptions.every((p) => !/[*?[\\]/.test(withoutTrailingGlob(p.text)));
  const exceptionPrefixes = exceptions.map((p) => `${withoutTrailingGlob(p.text)}/`);

  const paths: string[] = [];
  const emitted = new Set<string>();
  let excluded = 0;
  const emit = (path: string) => {
    // An excluded directory with a kept child is sent all the same, as its parent.
    const parts = path.split('/');
    for (let n = 1; n <= parts.length; n++) {
      const p = parts.slice(0, n).join('/');
      if (!emitted.has(p)) {
        emitted.add(p);
        paths.push(p);
      }
    }
  };

  const walk = async (rel: string, parent: ParentMatches | undefined): Promise<void> => {
    const entries = await readdir(rel ? join(dir, rel) : dir, { withFileTypes: true });
    // fsutil walks in lexical order; the order only matters for which parents come first.
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      const isDir = entry.isDirectory();
      const { excluded: isExcluded, matches } = matcher.matchesUsingParentResults(path, parent);
      if (isExcluded && !alwaysSent.has(path)) {
        if (!isDir) {
          excluded++;
          continue;
        }
        const descend = !onlyPrefixExceptions || exceptionPrefixes.some((prefix) => prefix.startsWith(`${path}/`));
        if (!descend) {
          excluded++;
          continue;
        }
        await walk(path, matches);
        continue;
      }
      emit(path);
      if (isDir) await walk(path, matches);
    }
  };
  await walk('', undefined);
  // A Dockerfile or ignore file under an excluded directory BuildKit never descends into.
  for (const path of alwaysSent) {
    if (!emitted.has(path) && (await lstat(join(dir, path)).catch(() => undefined))?.isFile()) emit(path);
  }
  return { paths, ignoreFile, excluded };
}
