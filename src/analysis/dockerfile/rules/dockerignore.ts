import { posix } from 'node:path';
import { chain } from '../model.js';
import { isOfficial, quoteList, type Finding, type Rule, type RuleContext } from './rule.js';

/**
 * .dockerignore patterns as Docker reads them (moby/patternmatcher): cleaned paths,
 * `*` and `?` within a path segment, `**` across segments, `!` re-includes, the last
 * matching pattern wins, and excluding a directory excludes everything under it.
 */
function compile(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      re += '.*';
      i++;
      if (pattern[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}(/.*)?$`);
}

export function excludedBy(dockerignore: string, path: string): boolean {
  let excluded = false;
  for (const rawLine of dockerignore.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const cleaned = posix.normalize(negate ? line.slice(1).trim() : line).replace(/^\/+|\/+$/g, '');
    if (cleaned && compile(cleaned).test(path)) excluded = !negate;
  }
  return excluded;
}

/** Paths that should never reach the builder; `node_modules` only matters for Node builds. */
function wanted(ctx: RuleContext): { path: string; pattern: string }[] {
  const node =
    ctx.model.stages.some((s) => chain(s).some((c) => isOfficial(c.image, 'node'))) ||
    ctx.runs().some((i) => ctx.commands(i).some((c) => ['npm', 'yarn', 'pnpm'].includes(c.name)));
  return [
    { path: '.git', pattern: '.git' },
    ...(node ? [{ path: 'node_modules', pattern: 'node_modules' }] : []),
    { path: '.env', pattern: '.env' },
    { path: 'server.pem', pattern: '*.pem' },
  ];
}

/** Whether anything is taken from the context at all: without COPY/ADD, BuildKit sends none of it. */
const usesContext = (ctx: RuleContext) =>
  ctx.model.instrs.some(
    (i) =>
      (i.keyword === 'COPY' || i.keyword === 'ADD') &&
      !i.flags.some((f) => f.name === 'from') &&
      i.heredocs.length === 0 &&
      !(i.args[0] ?? '').includes('://'),
  );

const missing: Rule = {
  id: 'dockerignore-missing',
  refs: [],
  severity: 'warning',
  title: 'No .dockerignore',
  check(ctx) {
    if (ctx.options.dockerignore !== null || !usesContext(ctx)) return [];
    const lines = wanted(ctx).map((w) => w.pattern);
    return [
      {
        instr: null,
        detail:
          'Without a .dockerignore the whole directory (.git, local dependencies, .env files, keys) is ' +
          'sent to the builder and `COPY . .` bakes it into the image and busts the cache on every change.',
        fix: `Create .dockerignore:\n${[...lines, '**/*.key', 'Dockerfile*', '.dockerignore'].join('\n')}`,
      },
    ];
  },
};

const incomplete: Rule = {
  id: 'dockerignore-incomplete',
  refs: [],
  severity: 'warning',
  title: '.dockerignore misses common entries',
  check(ctx) {
    const content = ctx.options.dockerignore;
    if (typeof content !== 'string' || !usesContext(ctx)) return [];
    const gaps = wanted(ctx).filter((w) => !excludedBy(content, w.path));
    if (gaps.length === 0) return [];
    const why = [
      gaps.some((g) => g.path === '.git') && 'the git history changes on every commit and busts the COPY cache',
      gaps.some((g) => g.path === 'node_modules') && 'host-built node_modules are sent and can overwrite the ones installed in the image',
      gaps.some((g) => g.path === '.env' || g.path.endsWith('.pem')) && 'secrets can end up in the image',
    ].filter(Boolean);
    const finding: Finding = {
      instr: null,
      detail: `.dockerignore does not exclude ${quoteList(gaps.map((g) => g.pattern))}: ${why.join('; ')}.`,
      fix: `Add to .dockerignore:\n${gaps.map((g) => g.pattern).join('\n')}`,
    };
    return [finding];
  },
};

export const DOCKERIGNORE_RULES: Rule[] = [missing, incomplete];
