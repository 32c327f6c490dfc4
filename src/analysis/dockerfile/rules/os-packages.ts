import { MB } from '../types.js';
import { hasOpt, isApt, osInstall, packageArgs, type Invocation, type Tool } from '../packages.js';
import { hasCacheMount, quoteList, removes, type Finding, type Rule, type RuleContext } from './rule.js';

type Family = 'apt' | 'apk' | 'zypper';
const family = (inv: Invocation): Family | null =>
  isApt(inv) ? 'apt' : inv.tool === 'apk' ? 'apk' : inv.tool === 'zypper' ? 'zypper' : null;
const isUpdate = (inv: Invocation) =>
  isApt(inv) || inv.tool === 'apk' ? inv.sub === 'update' : inv.tool === 'zypper' && inv.sub === 'refresh';
const installs = (inv: Invocation) =>
  osInstall(inv) || ((isApt(inv) || inv.tool === 'apk') && ['upgrade', 'dist-upgrade', 'full-upgrade'].includes(inv.sub));

/** `apk add` → `apk add --no-cache` where missing, and `apk update` dropped (--no-cache fetches a fresh index). */
function apkNoCache(text: string): string {
  return text
    .replace(/apk\s+update\s*(&&|;)\s*(\\\n\s*)?/g, '')
    .replace(/(?:&&|;)\s*(\\\n\s*)?apk\s+update\b/g, '')
    .replace(/\bapk(\s+)add\b(?![^&|;]*--no-cache)/g, 'apk$1add --no-cache');
}

const updateAlone: Rule = {
  id: 'package-update-alone',
  refs: ['DS017'],
  severity: 'warning',
  title: 'Package index update in a RUN of its own',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const invs = ctx.invocations(instr);
      const update = invs.find((i) => isUpdate(i) && !invs.some((j) => family(j) === family(i) && installs(j)));
      if (!update) continue;
      const fam = family(update)!;
      const next = instr.stage?.instrs.find(
        (i) => i.index > instr.index && i.keyword === 'RUN' && ctx.invocations(i).some((j) => family(j) === fam && installs(j)),
      );
      let fix: string;
      if (fam === 'apk')
        fix = next
          ? `Delete line ${instr.line} and write line ${next.line} as:\n${apkNoCache(next.text)}`
          : `Delete line ${instr.line}; use \`apk add --no-cache <packages>\`, which fetches a fresh index and keeps none.`;
      else if (next)
        fix =
          `Delete line ${instr.line} and write line ${next.line} as:\n` +
          `RUN ${update.cmd.words.join(' ')} ${ctx.model.escape}\n    && ${ctx.oneLine(next)}`;
      else
        fix =
          `RUN ${update.cmd.words.join(' ')} ` +
          `&& ${fam === 'apt' ? 'apt-get install -y --no-install-recommends' : 'zypper install -y'} ` +
          `<packages>${fam === 'apt' ? ' && rm -rf /var/lib/apt/lists/*' : ''}`;
      out.push({
        instr,
        detail:
          `\`${update.cmd.words.join(' ')}\` in its own RUN is cached separately: later builds reuse the stale index ` +
          `with a changed install line (and can fail on vanished package versions). Update and install in the same RUN.`,
        fix,
      });
    }
    return out;
  },
};

const apkNoCacheRule: Rule = {
  id: 'apk-no-cache',
  refs: ['DL3019', 'DS025'],
  severity: 'warning',
  title: 'apk add without --no-cache',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.finalImageStages()) {
      for (const instr of ctx.runs(stage)) {
        const calls = ctx.invocations(instr).filter((i) => i.tool === 'apk' && i.sub === 'add' && !hasOpt(i, '--no-cache'));
        if (calls.length === 0 || removes(ctx, instr, '/var/cache/apk') || hasCacheMount(instr, '/var/cache/apk', '/etc/apk/cache'))
          continue;
        out.push({
          instr,
          detail: '`apk add` without --no-cache (or after `apk update`) leaves the package index, ~2-5 MB, in /var/cache/apk.',
          fix: apkNoCache(instr.text),
          savings: 3 * MB,
        });
      }
    }
    return out;
  },
};

const apkUnpinned: Rule = {
  id: 'apk-unpinned',
  refs: ['DL3018'],
  severity: 'info',
  title: 'apk packages without pinned versions',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      const pkgs = ctx
        .invocations(instr)
        .filter((i) => i.tool === 'apk' && i.sub === 'add')
        .flatMap(packageArgs)
        .filter((p) => !/[=<>~]/.test(p));
      if (pkgs.length === 0) continue;
      out.push({
        instr,
        detail: `${quoteList(pkgs)} will be whatever the repository has on build day.`,
        fix: `Pin versions, e.g. \`${pkgs[0]}=<version>\` or \`${pkgs[0]}~<major.minor>\` (\`apk policy ${pkgs[0]}\` lists them).`,
      });
    }
    return out;
  },
};

interface CleanSpec {
  id: string;
  refs: string[];
  tools: Tool[];
  title: string;
  cleanCmd: (tool: Tool) => string;
  isClean: (inv: Invocation) => boolean;
  cacheDirs: string[];
  savings: number;
}

function cleanRule(spec: CleanSpec): Rule {
  return {
    id: spec.id,
    refs: spec.refs,
    severity: 'warning',
    title: spec.title,
    check(ctx: RuleContext) {
      const out: Finding[] = [];
      for (const stage of ctx.finalImageStages()) {
        for (const instr of ctx.runs(stage)) {
          const invs = ctx.invocations(instr).filter((i) => spec.tools.includes(i.tool));
          const install = invs.find((i) => osInstall(i) || ['update', 'upgrade'].includes(i.sub));
          if (!install || invs.some(spec.isClean) || removes(ctx, instr, ...spec.cacheDirs) || hasCacheMount(instr, ...spec.cacheDirs))
            continue;
          out.push({
            instr,
            detail:
              `\`${install.tool} ${install.sub}\` leaves repository metadata and ` +
              `downloaded packages in ${spec.cacheDirs[0]} unless the same RUN cleans it.`,
            fix: ctx.appendCommand(instr, spec.cleanCmd(install.tool)),
            savings: spec.savings,
          });
        }
      }
      return out;
    },
  };
}

const cleansAll = (inv: Invocation) => inv.sub === 'clean' && inv.args.includes('all');

const yumClean = cleanRule({
  id: 'yum-no-clean',
  refs: ['DL3032', 'DS015'],
  tools: ['yum'],
  title: 'yum install without yum clean all',
  cleanCmd: () => 'yum clean all && rm -rf /var/cache/yum',
  isClean: cleansAll,
  cacheDirs: ['/var/cache/yum'],
  savings: 100 * MB,
});

const dnfClean = cleanRule({
  id: 'dnf-no-clean',
  refs: ['DL3040', 'DS019', 'DS027'],
  tools: ['dnf', 'microdnf'],
  title: 'dnf/microdnf install without clean all',
  cleanCmd: (tool) => `${tool} clean all`,
  isClean: cleansAll,
  cacheDirs: ['/var/cache/dnf', '/var/cache/yum'],
  savings: 80 * MB,
});

const zypperClean = cleanRule({
  id: 'zypper-no-clean',
  refs: ['DL3036', 'DS020'],
  tools: ['zypper'],
  title: 'zypper install without zypper clean',
  cleanCmd: () => 'zypper clean --all',
  isClean: (inv) => inv.sub === 'clean' || inv.sub === 'cc',
  cacheDirs: ['/var/cache/zypp'],
  savings: 40 * MB,
});

export const OS_PACKAGE_RULES: Rule[] = [updateAlone, apkNoCacheRule, apkUnpinned, yumClean, dnfClean, zypperClean];
