import { MB } from '../types.js';
import type { Instr } from '../model.js';
import { hasOpt, isApt, packageArgs, type Invocation } from '../packages.js';
import { hasCacheMount, lastInChain, quoteList, removes, type Finding, type Rule, type RuleContext } from './rule.js';

/** Rough installed sizes (MB) of packages that commonly dominate a layer; 8 MB otherwise. */
const SIZES: Record<string, number> = {
  'build-essential': 200,
  gcc: 100,
  'g++': 120,
  clang: 300,
  cmake: 40,
  git: 40,
  python3: 50,
  'python3-pip': 60,
  'default-jdk': 300,
  'openjdk-17-jdk': 300,
  nodejs: 80,
  curl: 5,
  wget: 4,
  'ca-certificates': 1,
};
const estimate = (pkgs: string[]) => pkgs.reduce((sum, p) => sum + (SIZES[p.split('=')[0]!] ?? 8), 0) * MB;

function aptCalls(ctx: RuleContext, instr: Instr, sub?: string): Invocation[] {
  return ctx.invocations(instr).filter((i) => isApt(i) && (sub === undefined || i.sub === sub));
}

/** `apt-get install` → `apt-get install <flag>` for the calls that lack it. */
function addAfterInstall(text: string, flag: string): string {
  return text.replace(
    /(^|[\s;&|(])(apt(?:-get)?)(\s[^&|;\n]*?\binstall\b)/g,
    (all, pre: string, tool: string, mid: string, offset: number) => {
      const rest = text.slice(offset + all.length).split(/&&|\|\||;|\|/, 1)[0]!;
      return new RegExp(`(^|\\s)${flag}(\\s|$)`).test(mid + rest) ? all : `${pre}${tool}${mid} ${flag}`;
    },
  );
}

const RECOMMENDS_OFF = /APT::Install-Recommends\s*[= ]\s*"?(false|0)/i;

const noInstallRecommends: Rule = {
  id: 'apt-no-install-recommends',
  refs: ['DL3015', 'DS029'],
  severity: 'warning',
  title: 'apt-get install without --no-install-recommends',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const calls = aptCalls(ctx, instr, 'install').filter(
        (i) => !hasOpt(i, '--no-install-recommends') && !i.opts.some((o) => RECOMMENDS_OFF.test(o.replace('=', ' '))),
      );
      if (calls.length === 0) continue;
      // An apt.conf.d snippet written earlier (in this stage or one it builds on) turns recommends off for good.
      if (instr.stage && lastInChain(instr.stage, (i) => i.keyword === 'RUN' && RECOMMENDS_OFF.test(i.text), instr)) continue;
      const pkgs = calls.flatMap(packageArgs);
      out.push({
        instr,
        detail:
          `apt installs "Recommends" packages too, typically ~30% more than ` +
          `asked for (${quoteList(pkgs.slice(0, 6))}${pkgs.length > 6 ? ', …' : ''}). ` +
          `Add --no-install-recommends and name what you really need.`,
        fix: addAfterInstall(instr.text, '--no-install-recommends'),
        savings: instr.stage?.inFinalImage ? Math.round(estimate(pkgs) * 0.3) : null,
      });
    }
    return out;
  },
};

const listsNotRemoved: Rule = {
  id: 'apt-lists-not-removed',
  refs: ['DL3009'],
  severity: 'warning',
  title: 'apt lists left in the layer',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.finalImageStages()) {
      for (const instr of ctx.runs(stage)) {
        // A RUN with only `apt-get update` is package-update-alone's finding.
        if (aptCalls(ctx, instr, 'update').length === 0 || aptCalls(ctx, instr, 'install').length === 0) continue;
        if (removes(ctx, instr, '/var/lib/apt/lists') || hasCacheMount(instr, '/var/lib/apt/lists')) continue;
        out.push({
          instr,
          detail:
            '`apt-get update` downloads package lists (20-40 MB) to /var/lib/apt/lists; ' +
            'unless the same RUN deletes them they stay in the image forever.',
          fix: ctx.appendCommand(instr, 'rm -rf /var/lib/apt/lists/*'),
          savings: 30 * MB,
        });
      }
    }
    return out;
  },
};

const unpinned: Rule = {
  id: 'apt-unpinned',
  refs: ['DL3008'],
  severity: 'info',
  title: 'apt packages without pinned versions',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const pkgs = aptCalls(ctx, instr, 'install')
        .flatMap(packageArgs)
        .filter((p) => !p.includes('='));
      if (pkgs.length === 0) continue;
      out.push({
        instr,
        detail: `${quoteList(pkgs)} will be whatever the mirror has on build day, so two builds of the same commit can differ.`,
        fix:
          `Pin each package, e.g. \`${pkgs[0]}=<version>\` (\`apt-cache policy ${pkgs[0]}\` lists ` +
          `candidates), or pin the base image by digest and accept distro updates deliberately.`,
      });
    }
    return out;
  },
};

const upgrade: Rule = {
  id: 'apt-upgrade',
  refs: ['DL3005', 'DS024'],
  severity: 'info',
  title: 'apt-get upgrade / dist-upgrade in the build',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const calls = ctx.invocations(instr).filter((i) => isApt(i) && ['upgrade', 'dist-upgrade', 'full-upgrade'].includes(i.sub));
      if (calls.length === 0) continue;
      out.push({
        instr,
        detail:
          `\`${calls[0]!.tool} ${calls[0]!.sub}\` makes the image depend on the ` +
          `build day and adds a layer of changed files on top of the base image.`,
        fix:
          `Remove \`${calls[0]!.tool} ${calls[0]!.sub}\` from line ${instr.line} and move ` +
          `to a newer base image tag (or rebuild on a fresh pull of it) to get updates.`,
      });
    }
    return out;
  },
};

const ASSUME_YES = /^-o=APT::Get::Assume-Yes=(true|1|yes)$/i;

const missingYes: Rule = {
  id: 'apt-missing-yes',
  refs: ['DL3014', 'DS021'],
  severity: 'warning',
  title: 'apt-get install without -y',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const calls = aptCalls(ctx, instr, 'install').filter(
        (i) =>
          !hasOpt(i, '-y', '--yes', '--assume-yes') &&
          !i.opts.some((o) => o === '-qq' || o === '-q=2' || ASSUME_YES.test(o)) &&
          !i.cmd.pipeIn,
      );
      if (calls.length === 0) continue;
      out.push({
        instr,
        detail: 'Without -y, apt-get asks for confirmation and the non-interactive build aborts.',
        fix: addAfterInstall(instr.text, '-y'),
      });
    }
    return out;
  },
};

const aptCli: Rule = {
  id: 'apt-instead-of-apt-get',
  refs: ['DL3027'],
  severity: 'warning',
  title: '`apt` used in a RUN',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      if (!ctx.invocations(instr).some((i) => i.tool === 'apt')) continue;
      out.push({
        instr,
        detail:
          '`apt` is meant for people: its output and behaviour are not stable ' +
          'for scripts and it warns about that. Use `apt-get` (or `apt-cache`).',
        fix: instr.text.replace(/(^|[\s;&|(])apt(?=\s)/g, '$1apt-get'),
      });
    }
    return out;
  },
};

export const APT_RULES: Rule[] = [noInstallRecommends, listsNotRemoved, unpinned, upgrade, missingYes, aptCli];
export { addAfterInstall };
