import { posix } from 'node:path';
import type { Instr, Stage } from '../model.js';
import { destination, sources, workdirAt } from './instructions.js';
import { type Finding, type Rule, type RuleContext } from './rule.js';

const consecutiveRun: Rule = {
  id: 'consecutive-run',
  refs: ['DL3059'],
  severity: 'info',
  title: 'Consecutive RUN instructions',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.model.stages) {
      let group: Instr[] = [];
      const flush = () => {
        if (group.length > 1) {
          const mergeable = group.every((i) => i.heredocs.length === 0);
          out.push({
            instr: group[1]!,
            detail:
              `Lines ${group.map((i) => i.line).join(', ')} are separate RUNs with the same ` +
              `flags: each is a layer and a cache step. Merge the ones that change together.`,
            fix: mergeable
              ? `RUN ${group.map((i) => ctx.oneLine(i)).join(` ${ctx.model.escape}\n    && `)}`
              : 'Merge the heredoc bodies into one `RUN <<EOF` script.',
          });
        }
        group = [];
      };
      for (const instr of stage.instrs) {
        const flags = (i: Instr) => JSON.stringify(i.flags);
        if (instr.keyword === 'RUN' && (group.length === 0 || flags(group[0]!) === flags(instr))) group.push(instr);
        else {
          flush();
          if (instr.keyword === 'RUN') group.push(instr);
        }
      }
      flush();
    }
    return out;
  },
};

const runCd: Rule = {
  id: 'run-cd',
  refs: ['DL3003', 'DS013'],
  severity: 'warning',
  title: 'cd in RUN instead of WORKDIR',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      // Only a leading `cd`: it sets the directory for the whole step, which is WORKDIR's job.
      // A `cd` into an unpacked source tree later in the chain is normal shell.
      const first = ctx.commands(instr).find((c) => c.name !== 'set');
      if (first?.name !== 'cd' || !first.words[1] || instr.exec) continue;
      const dir = first.words[1];
      const rest = ctx.oneLine(instr).replace(/^(set\s+\S+\s*(&&|;)\s*)?cd\s+\S+\s*(&&|;)?\s*/, '$1');
      out.push({
        instr,
        detail:
          `\`cd ${dir}\` at the start of the RUN only lasts for this step; WORKDIR ` +
          `says it once, creates the directory and applies to later instructions.`,
        fix: `WORKDIR ${dir}${rest ? `\nRUN ${rest}` : ''}`,
      });
    }
    return out;
  },
};

interface Ecosystem {
  manifests: RegExp;
  install: (name: string, sub: string, words: string[]) => boolean;
  copy: string;
}

const ECOSYSTEMS: Ecosystem[] = [
  {
    manifests: /^(package(-lock)?\.json|npm-shrinkwrap\.json|yarn\.lock|pnpm-lock\.yaml|\.yarnrc\.yml)$/,
    install: (n, s, w) =>
      (n === 'npm' && ['install', 'i', 'ci'].includes(s) && w.slice(2).every((x) => x.startsWith('-'))) ||
      (n === 'yarn' && (s === 'install' || s === '' || s.startsWith('-'))) ||
      (n === 'pnpm' && s === 'install'),
    copy: 'package.json package-lock.json ./',
  },
  {
    manifests: /^(requirements.*\.txt|Pipfile(\.lock)?|pyproject\.toml|poetry\.lock|uv\.lock|setup\.(py|cfg))$/,
    install: (n, _s, w) =>
      ((/^pip/.test(n) || (/^python/.test(n) && w[2] === 'pip')) &&
        w.includes('install') &&
        w.some((x) => x === '-r' || x.startsWith('--requirement') || x === '.' || x === '-e')) ||
      (['poetry', 'pipenv'].includes(n) && w[1] === 'install') ||
      (n === 'uv' && w[1] === 'sync'),
    copy: 'requirements.txt ./',
  },
  { manifests: /^go\.(mod|sum)$/, install: (n, s, w) => n === 'go' && s === 'mod' && w[2] === 'download', copy: 'go.mod go.sum ./' },
  {
    manifests: /^pom\.xml$/,
    install: (n, _s, w) => (n === 'mvn' || n === 'mvnw') && w.some((x) => /^(package|install|verify|compile|dependency:.*)$/.test(x)),
    copy: 'pom.xml ./',
  },
  {
    manifests: /^(build|settings)\.gradle(\.kts)?$|^gradle\.properties$/,
    install: (n, _s, w) =>
      (n === 'gradle' || n === 'gradlew') && w.some((x) => /^(build|assemble|dependencies|bootJar|installDist)$/.test(x)),
    copy: 'build.gradle settings.gradle ./',
  },
  { manifests: /^Gemfile(\.lock)?$/, install: (n, s) => n === 'bundle' && (s === 'install' || s === ''), copy: 'Gemfile Gemfile.lock ./' },
  { manifests: /^composer\.(json|lock)$/, install: (n, s) => n === 'composer' && s === 'install', copy: 'composer.json composer.lock ./' },
  {
    manifests: /^Cargo\.(toml|lock)$/,
    install: (n, s) => n === 'cargo' && (s === 'fetch' || s === 'build'),
    copy: 'Cargo.toml Cargo.lock ./',
  },
  { manifests: /\.(csproj|fsproj|sln)$/, install: (n, s) => n === 'dotnet' && s === 'restore', copy: '*.csproj ./' },
];

/** `package*.json` and `requirements*.txt` are manifests too: try the glob on the usual names. */
function copiesManifest(eco: Ecosystem, name: string): boolean {
  if (eco.manifests.test(name)) return true;
  if (!/[*?[]/.test(name)) return false;
  const glob = new RegExp(
    `^${name
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return eco.copy.split(' ').some((n) => glob.test(n));
}

/** The manifests to copy first when the installer is not the ecosystem's default one. */
const MANIFESTS_BY_TOOL: Record<string, string> = {
  yarn: 'package.json yarn.lock ./',
  pnpm: 'package.json pnpm-lock.yaml ./',
  poetry: 'pyproject.toml poetry.lock ./',
  pipenv: 'Pipfile Pipfile.lock ./',
  uv: 'pyproject.toml uv.lock ./',
};

const fromContext = (i: Instr) =>
  (i.keyword === 'COPY' || i.keyword === 'ADD') && !i.flags.some((f) => f.name === 'from') && i.heredocs.length === 0;
const wholeContext = (i: Instr) => fromContext(i) && sources(i).some((s) => /^(\.|\.\/|\*|\.\/\*)$/.test(s));

const copyBeforeDeps: Rule = {
  id: 'copy-context-before-deps',
  refs: [],
  severity: 'warning',
  title: 'Whole build context copied before installing dependencies',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.model.stages) {
      const finding = firstCacheBust(ctx, stage);
      if (finding) out.push(finding);
    }
    return out;
  },
};

function firstCacheBust(ctx: RuleContext, stage: Stage): Finding | null {
  let whole: Instr | null = null;
  const manifests = new Set<Ecosystem>();
  for (const instr of stage.instrs) {
    if (fromContext(instr) && !whole) {
      for (const eco of ECOSYSTEMS) if (sources(instr).some((s) => copiesManifest(eco, posix.basename(s)))) manifests.add(eco);
      if (wholeContext(instr)) whole = instr;
      continue;
    }
    if (!whole || instr.keyword !== 'RUN') continue;
    for (const cmd of ctx.commands(instr)) {
      const eco = ECOSYSTEMS.find((e) => e.install(cmd.name, cmd.words[1] ?? '', cmd.words));
      if (!eco || manifests.has(eco)) continue;
      return {
        instr: whole,
        detail:
          `\`${whole.text.trim()}\` comes before \`${cmd.words.join(' ')}\` (line ${instr.line}): ` +
          `any source change invalidates the cache and every build re-installs all dependencies.`,
        fix: `COPY ${MANIFESTS_BY_TOOL[cmd.name] ?? eco.copy}\nRUN ${cmd.words.join(' ')}\n${whole.text.trim()}`,
      };
    }
  }
  return null;
}

const copyWithoutChown: Rule = {
  id: 'copy-without-chown',
  refs: [],
  severity: 'warning',
  title: 'chown after COPY instead of COPY --chown',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.model.stages) {
      const copies: { instr: Instr; dest: string }[] = [];
      for (const instr of stage.instrs) {
        if ((instr.keyword === 'COPY' || instr.keyword === 'ADD') && !instr.flags.some((f) => f.name === 'chown')) {
          copies.push({ instr, dest: posix.resolve(workdirAt(instr), destination(instr)) });
        }
        if (instr.keyword !== 'RUN') continue;
        for (const cmd of ctx.commands(instr).filter((c) => c.name === 'chown')) {
          const [owner, ...paths] = cmd.words.slice(1).filter((w) => !w.startsWith('-'));
          if (!owner) continue;
          const targets = paths.map((p) => posix.resolve(workdirAt(instr), p));
          const hit = copies.filter((c) => targets.some((t) => c.dest === t || c.dest.startsWith(`${t}/`) || t.startsWith(`${c.dest}/`)));
          if (hit.length === 0) continue;
          out.push({
            instr,
            detail:
              `\`${cmd.words.join(' ')}\` rewrites files that ` +
              `line${hit.length > 1 ? 's' : ''} ${hit.map((h) => h.instr.line).join(', ')} copied: ` +
              `every changed file is stored again in a new layer, doubling their size in the image.`,
            fix:
              hit.map((h) => h.instr.text.trim().replace(/^(COPY|ADD)\s/i, `$1 --chown=${owner} `)).join('\n') +
              `\n# and drop \`${cmd.words.join(' ')}\` from line ${instr.line}`,
          });
        }
      }
    }
    return out;
  },
};

export const LAYER_RULES: Rule[] = [consecutiveRun, runCd, copyBeforeDeps, copyWithoutChown];
