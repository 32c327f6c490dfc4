import { MB } from '../types.js';
import type { Instr, Stage } from '../model.js';
import { hasOpt, type Invocation } from '../packages.js';
import { hasCacheMount, quoteList, removes, varValue, type Finding, type Rule, type RuleContext } from './rule.js';

const pipInstalls = (ctx: RuleContext, instr: Instr): Invocation[] =>
  ctx.invocations(instr).filter((i) => i.tool === 'pip' && i.sub === 'install');
const requirementFile = (inv: Invocation) => hasOpt(inv, '-r', '--requirement');

const pipNoCacheDir: Rule = {
  id: 'pip-no-cache-dir',
  refs: ['DL3042'],
  severity: 'warning',
  title: 'pip install without --no-cache-dir',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.finalImageStages()) {
      for (const instr of ctx.runs(stage)) {
        const calls = pipInstalls(ctx, instr).filter((i) => !hasOpt(i, '--no-cache-dir'));
        if (calls.length === 0) continue;
        // PIP_NO_CACHE_DIR with any value turns the cache off; so does a cache mount or deleting it.
        if (
          varValue(instr, 'PIP_NO_CACHE_DIR') ||
          hasCacheMount(instr, '/root/.cache/pip', '/root/.cache') ||
          removes(ctx, instr, '/root/.cache', '~/.cache')
        )
          continue;
        const packages = calls.reduce((n, i) => n + i.args.length, 0);
        out.push({
          instr,
          detail:
            'pip keeps every downloaded wheel in ~/.cache/pip; in an image that is dead weight roughly the size of what was installed.',
          fix: instr.text.replace(/(\bpip[\d.]*\s+install)\b(?![^&|;]*--no-cache-dir)/g, '$1 --no-cache-dir'),
          savings: (calls.some(requirementFile) ? 50 : Math.max(10, packages * 10)) * MB,
        });
      }
    }
    return out;
  },
};

const PIN = /[=<>~!@]|:\/\/|\.(whl|zip|tar\.gz)$/;
const TOOLING = new Set(['pip', 'setuptools', 'wheel']);

const pipUnpinned: Rule = {
  id: 'pip-unpinned',
  refs: ['DL3013'],
  severity: 'info',
  title: 'pip packages without pinned versions',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const pkgs = pipInstalls(ctx, instr)
        .filter((i) => !hasOpt(i, '-c', '--constraint'))
        .flatMap((i) => i.args.filter((a) => !PIN.test(a) && !/^[./~$]/.test(a) && !(hasOpt(i, '-U', '--upgrade') && TOOLING.has(a))));
      if (pkgs.length === 0) continue;
      out.push({
        instr,
        detail: `${quoteList(pkgs)} ${pkgs.length > 1 ? 'resolve' : 'resolves'} to the newest release on build day.`,
        fix:
          `Pin versions (\`${pkgs[0]}==<version>\`) or install from a locked ` +
          `requirements file: \`pip install --no-cache-dir -r requirements.txt\`.`,
      });
    }
    return out;
  },
};

const npmCalls = (ctx: RuleContext, instr: Instr, ...subs: string[]) =>
  ctx.invocations(instr).filter((i) => i.tool === 'npm' && subs.includes(i.sub));
const PRODUCTION = ['--production', '--omit=dev', '--only=production', '--only=prod'];

/** Whether a later RUN of the stage builds or tests with the dev dependencies. */
function buildsLater(ctx: RuleContext, stage: Stage, after: Instr): boolean {
  return stage.instrs.some(
    (i) =>
      i.index > after.index &&
      ctx
        .commands(i)
        .some((c) => c.name === 'npx' || (c.name === 'npm' && ['run', 'run-script', 'test', 'build'].includes(c.words[1] ?? ''))),
  );
}

const npmInstall: Rule = {
  id: 'npm-install-not-ci',
  refs: [],
  severity: 'warning',
  title: 'npm install instead of npm ci',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const calls = npmCalls(ctx, instr, 'install').filter((i) => i.args.length === 0 && !hasOpt(i, '-g', '--global'));
      if (calls.length === 0 || !instr.stage) continue;
      const production = instr.stage.inFinalImage && !buildsLater(ctx, instr.stage, instr);
      const already = calls.some((i) => PRODUCTION.some((p) => i.opts.includes(p)));
      const ci = production && !already ? 'npm ci --omit=dev' : 'npm ci';
      out.push({
        instr,
        detail:
          `\`npm install\` may rewrite package-lock.json and resolve newer versions; \`npm ` +
          `ci\` installs exactly the lockfile, fails if it is out of date, and is ` +
          `faster.${production ? ' This stage ships, so leave out devDependencies with --omit=dev.' : ''}`,
        fix: instr.text.replace(/\bnpm(\s+)(install|i)\b/g, (_all, sp: string) => `npm${sp}${ci.slice(4)}`),
      });
    }
    return out;
  },
};

const npmCache: Rule = {
  id: 'npm-cache-not-cleaned',
  refs: [],
  severity: 'warning',
  title: 'npm cache left in the image',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.finalImageStages()) {
      for (const instr of ctx.runs(stage)) {
        const calls = npmCalls(ctx, instr, 'install', 'ci');
        if (calls.length === 0) continue;
        const cleaned = ctx.invocations(instr).some((i) => i.tool === 'npm' && i.sub === 'cache' && i.args[0] === 'clean');
        if (
          cleaned ||
          removes(ctx, instr, '/root/.npm', '~/.npm', '$HOME/.npm', '/home/node/.npm') ||
          hasCacheMount(instr, '/root/.npm', '/home/node/.npm')
        )
          continue;
        out.push({
          instr,
          detail: 'npm keeps a copy of every downloaded tarball in ~/.npm/_cacache; in the shipped image it only adds size.',
          fix: ctx.appendCommand(instr, 'npm cache clean --force'),
          savings: 50 * MB,
        });
      }
    }
    return out;
  },
};

const yarnCache: Rule = {
  id: 'yarn-cache-not-cleaned',
  refs: ['DL3060'],
  severity: 'warning',
  title: 'yarn cache left in the image',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.finalImageStages()) {
      for (const instr of ctx.runs(stage)) {
        const invs = ctx.invocations(instr).filter((i) => i.tool === 'yarn');
        if (!invs.some((i) => ['install', 'add', 'global'].includes(i.sub))) continue;
        if (
          invs.some((i) => i.sub === 'cache' && i.args[0] === 'clean') ||
          removes(ctx, instr, '/usr/local/share/.cache/yarn', '/root/.cache/yarn', '~/.cache/yarn') ||
          hasCacheMount(instr, '/usr/local/share/.cache/yarn', '/root/.cache/yarn')
        )
          continue;
        out.push({
          instr,
          detail: 'yarn keeps every package it fetched in its global cache (/usr/local/share/.cache/yarn or ~/.cache/yarn).',
          fix: ctx.appendCommand(instr, 'yarn cache clean'),
          savings: 50 * MB,
        });
      }
    }
    return out;
  },
};

export const LANG_PACKAGE_RULES: Rule[] = [pipNoCacheDir, pipUnpinned, npmInstall, npmCache, yarnCache];
