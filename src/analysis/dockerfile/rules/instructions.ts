import { posix } from 'node:path';
import type { Instr } from '../model.js';
import { parseShell } from '../shell.js';
import { expand } from '../vars.js';
import { lastInChain, type Finding, type Rule, type RuleContext } from './rule.js';

const URL_SOURCE = /^(https?|ftp):\/\//i;
const GIT_SOURCE = /^git@|^git:\/\/|\.git(#.*)?$/i;
const ARCHIVE = /\.(tar|tgz|tar\.(gz|bz2|xz|zst)|tbz2?|txz|tzst)$/i;

/** COPY/ADD sources (everything but the destination). */
export function sources(instr: Instr): string[] {
  const args = instr.exec ?? instr.args;
  return args.slice(0, -1);
}

export function destination(instr: Instr): string {
  const args = instr.exec ?? instr.args;
  return args.at(-1) ?? '';
}

/** The WORKDIR in effect at an instruction, `/` by default. */
export function workdirAt(instr: Instr): string {
  if (!instr.stage) return '/';
  const dirs: string[] = [];
  for (
    let i = lastInChain(instr.stage, (x) => x.keyword === 'WORKDIR', instr);
    i;
    i = i.stage ? lastInChain(i.stage, (x) => x.keyword === 'WORKDIR', i) : undefined
  ) {
    dirs.unshift(expand(i.args[0] ?? '', i.vars).value);
    if (dirs[0]!.startsWith('/')) break;
  }
  return posix.resolve('/', ...dirs);
}

const isAbsolute = (p: string) => p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\');

const workdirRelative: Rule = {
  id: 'workdir-relative',
  refs: ['DL3000', 'DS009'],
  severity: 'error',
  title: 'Relative WORKDIR',
  check(ctx) {
    return ctx.model.instrs
      .filter((i) => i.keyword === 'WORKDIR')
      .flatMap((i): Finding[] => {
        const raw = i.args[0] ?? '';
        const { value, complete } = expand(raw, i.vars);
        if (!complete || raw.startsWith('$') || isAbsolute(value)) return [];
        const resolved = posix.resolve(workdirAt(i), value);
        return [
          {
            instr: i,
            detail: `\`WORKDIR ${raw}\` is relative to whatever WORKDIR the base image set, which can change under you.`,
            fix: `WORKDIR ${resolved}`,
          },
        ];
      });
  },
};

const addLocal: Rule = {
  id: 'add-local-file',
  refs: ['DL3020', 'DS005'],
  severity: 'warning',
  title: 'ADD used to copy local files',
  check(ctx) {
    return ctx.model.instrs
      .filter(
        (i) =>
          i.keyword === 'ADD' &&
          sources(i).length > 0 &&
          !sources(i).some((s) => URL_SOURCE.test(s) || GIT_SOURCE.test(s) || ARCHIVE.test(s)),
      )
      .map((i) => ({
        instr: i,
        detail: 'ADD also fetches URLs and unpacks archives; for plain files COPY says what it does and has no surprises.',
        fix: i.text.replace(/^(\s*)ADD/i, '$1COPY'),
      }));
  },
};

const addUrl: Rule = {
  id: 'add-url',
  refs: [],
  severity: 'warning',
  title: 'ADD of a URL without a checksum',
  check(ctx) {
    const out: Finding[] = [];
    for (const i of ctx.model.instrs) {
      if (i.keyword !== 'ADD' || i.flags.some((f) => f.name === 'checksum')) continue;
      const url = sources(i).find((s) => URL_SOURCE.test(s) && !GIT_SOURCE.test(s));
      if (!url) continue;
      const dest = destination(i);
      const file = dest.endsWith('/') ? posix.join(dest, posix.basename(url.split('?')[0]!)) : dest;
      out.push({
        instr: i,
        detail: `Whatever ${url} serves on build day goes into the image unchecked, and ADD re-downloads it on every build.`,
        fix:
          `ADD --checksum=sha256:<sha256 of the file> ${url} ${dest}\n# or, without ADD:\n` +
          `RUN curl -fsSLo ${file} ${url} \\\n    && echo "<sha256>  ${file}" | sha256sum -c -`,
      });
    }
    return out;
  },
};

const SHELL_META = /&&|\|\||[|;<>`*?&]|\$\(|^\s*\w+=/;

/** `CMD node server.js` → `CMD ["node", "server.js"]`; scripts stay in an explicit sh -c. */
function execForm(instr: Instr, ctx: RuleContext): string {
  const line = ctx.oneLine(instr);
  // Shell syntax outside quotes needs a shell; quoted words alone do not.
  const unquoted = line.replace(/'[^']*'|"(?:[^"\\]|\\.)*"/g, '""');
  let argv: string[];
  if (SHELL_META.test(unquoted)) argv = ['/bin/sh', '-c', line];
  else if (unquoted.includes('$')) argv = ['/bin/sh', '-c', `exec ${line}`];
  else argv = parseShell(line)[0]?.words ?? [line];
  return `${instr.keyword} ${JSON.stringify(argv).replace(/","/g, '", "')}`;
}

const shellForm: Rule = {
  id: 'shell-form-cmd',
  refs: ['DL3025'],
  severity: 'warning',
  title: 'CMD/ENTRYPOINT in shell form',
  check(ctx) {
    return ctx.model.instrs
      .filter((i) => (i.keyword === 'CMD' || i.keyword === 'ENTRYPOINT') && !i.exec && i.body.trim() !== '')
      .map((i) => ({
        instr: i,
        title: `${i.keyword} in shell form`,
        detail:
          `Shell form runs the command as a child of /bin/sh -c: it is not PID 1, does not get SIGTERM on ` +
          `\`docker stop\`${i.keyword === 'ENTRYPOINT' ? ', and ignores CMD and `docker run` arguments' : ''}.`,
        fix: execForm(i, ctx),
      }));
  },
};

function multiple(id: string, refs: string[], keyword: string, severity: Rule['severity']): Rule {
  return {
    id,
    refs,
    severity,
    title: `Multiple ${keyword} instructions in one stage`,
    check(ctx) {
      const out: Finding[] = [];
      for (const stage of ctx.model.stages) {
        const all = stage.instrs.filter((i) => i.keyword === keyword);
        if (all.length < 2) continue;
        const last = all.at(-1)!;
        const earlier = all.slice(0, -1).map((i) => i.line);
        out.push({
          instr: last,
          detail:
            `Only the last ${keyword} of a stage takes effect ` +
            `(line ${last.line}); line${earlier.length > 1 ? 's' : ''} ${earlier.join(', ')} ${earlier.length > 1 ? 'are' : 'is'} ` +
            `dead code that misleads readers.`,
          fix: `Delete line${earlier.length > 1 ? 's' : ''} ${earlier.join(', ')}; keep:\n${last.text}`,
        });
      }
      return out;
    },
  };
}

const maintainer: Rule = {
  id: 'maintainer-deprecated',
  refs: ['DL4000', 'DS022'],
  severity: 'warning',
  title: 'MAINTAINER is deprecated',
  check(ctx) {
    return ctx.model.instrs
      .filter((i) => i.keyword === 'MAINTAINER')
      .map((i) => ({
        instr: i,
        detail: 'MAINTAINER has been deprecated since Docker 1.13; the OCI label carries the same information.',
        fix: `LABEL org.opencontainers.image.authors=${JSON.stringify(i.body.trim().replace(/^"|"$/g, ''))}`,
      }));
  },
};

/** The HEALTHCHECK / CMD / ENTRYPOINT duplicates and the rest of the instruction-shape rules. */
export const INSTRUCTION_RULES: Rule[] = [
  workdirRelative,
  addLocal,
  addUrl,
  shellForm,
  multiple('multiple-cmd', ['DL4003', 'DS016'], 'CMD', 'warning'),
  multiple('multiple-entrypoint', ['DL4004', 'DS007'], 'ENTRYPOINT', 'error'),
  multiple('multiple-healthcheck', ['DL3012', 'DS023'], 'HEALTHCHECK', 'error'),
  maintainer,
];
