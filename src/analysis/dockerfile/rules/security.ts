import { chain, type Instr, type Stage } from '../model.js';
import { osInstall, packageArgs } from '../packages.js';
import { setsPipefail } from '../shell.js';
import { expand } from '../vars.js';
import { imageParts, isAlpine, isOfficial, isWindows, lastInChain, type Finding, type Rule } from './rule.js';

/** Base images whose default user is not root. */
function nonRootBase(image: string): boolean {
  const { name, tag } = imageParts(image);
  return (
    /nonroot/.test(tag ?? '') ||
    /nonroot|unprivileged/.test(name) ||
    (name.startsWith('cgr.dev/chainguard/') && !/-dev$/.test(tag ?? '')) ||
    name.startsWith('bitnami/')
  );
}

/** Lines that create and switch to an unprivileged user on this kind of base image. */
function addUser(stage: Stage): string {
  const image = chain(stage).at(-1)!.image;
  if (/distroless|^scratch$/.test(image) || chain(stage).some((s) => s.image === 'scratch')) return 'USER 65532:65532';
  if (isWindows(stage)) return 'USER ContainerUser';
  if (isOfficial(image, 'node')) return 'USER node';
  if (isAlpine(stage)) return 'RUN addgroup -S app && adduser -S -G app -u 10001 app\nUSER app';
  return 'RUN groupadd --system app && useradd --system --gid app --uid 10001 --no-create-home app\nUSER app';
}

const rootUser: Rule = {
  id: 'root-user',
  refs: ['DL3002', 'DS002'],
  severity: 'warning',
  title: 'The final image runs as root',
  check(ctx) {
    const final = ctx.model.final;
    if (!final) return [];
    const user = lastInChain(final, (i) => i.keyword === 'USER');
    if (user) {
      const { value, complete } = expand(user.args[0] ?? '', user.vars);
      const name = value.split(':')[0]!;
      if (!complete || (name !== 'root' && name !== '0')) return [];
      return [
        {
          instr: user,
          detail:
            `The last USER of the final stage is \`${value}\`: a compromised ` +
            `process has root in the container and a much easier path out of it.`,
          fix: `Replace line ${user.line} with:\n${addUser(final)}`,
        },
      ];
    }
    const root = chain(final).at(-1)!;
    if (!root.imageResolved || nonRootBase(root.image)) return [];
    return [
      {
        instr: final.from,
        detail: 'The final stage never sets USER, so the container runs as root (uid 0) unless the runtime overrides it.',
        fix: `Add before CMD/ENTRYPOINT:\n${addUser(final)}`,
      },
    ];
  },
};

const sudo: Rule = {
  id: 'sudo-in-run',
  refs: ['DL3004', 'DS010'],
  severity: 'error',
  title: 'sudo in RUN',
  check(ctx) {
    return ctx
      .runs()
      .filter((i) => ctx.commands(i).some((c) => c.sudo))
      .map((i) => ({
        instr: i,
        detail: 'sudo has unpredictable TTY and signal behaviour and hides which user a step runs as. Switch with USER instead.',
        fix: i.text.replace(/\bsudo\s+(?:-\S+\s+)*/g, ''),
      }));
  },
};

const SECRET_WORDS = /^(PASSWORD|PASSWD|PASS|PWD|SECRET|SECRETS|TOKEN|APIKEY|CREDENTIAL|CREDENTIALS|PRIVATEKEY)$/;
const KEY_PAIRS = /(API|ACCESS|PRIVATE|SECRET|AUTH|ENCRYPTION|SIGNING|CLIENT)_KEY/;
const NOT_SECRET =
  /^(FILE|PATH|DIR|URL|URI|ENDPOINT|NAME|TYPE|LENGTH|TTL|EXPIRY|EXPIRES|TIMEOUT|HEADER|ENABLED|REQUIRED|HOST|PORT|USER|USERNAME)$/;

/** Whether a variable name says it holds a secret (`DB_PASSWORD`, `NPM_TOKEN`, `AWS_SECRET_ACCESS_KEY`). */
export function secretName(name: string): boolean {
  const upper = name.toUpperCase();
  if (upper === 'PWD') return false;
  const parts = upper.split(/[_.-]/);
  const hit = parts.findIndex((p) => SECRET_WORDS.test(p));
  const pair = KEY_PAIRS.exec(upper);
  if (hit < 0 && !pair) return false;
  const from = hit >= 0 ? hit : upper.slice(0, pair!.index).split(/[_.-]/).length;
  return !parts.slice(from + 1).some((p) => NOT_SECRET.test(p));
}

const secrets: Rule = {
  id: 'secret-in-env-arg',
  refs: ['DS031'],
  severity: 'error',
  title: 'Secret in ENV or ARG',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.model.instrs) {
      if (instr.keyword !== 'ENV' && instr.keyword !== 'ARG') continue;
      for (const p of instr.props) {
        if (!p.value || /^(true|false|yes|no|0|1)$/i.test(p.value) || !secretName(p.name)) continue;
        const id = p.name.toLowerCase().replace(/_/g, '-');
        out.push({
          instr,
          detail:
            `${instr.keyword} ${p.name} is stored in the image ${instr.keyword === 'ENV' ? 'config' : 'history'} ` +
            `for anyone who can pull it (\`docker history\`, \`docker inspect\`).`,
          fix:
            `Delete ${p.name} from line ${instr.line}; pass it only to the RUN that needs it:\n` +
            `RUN --mount=type=secret,id=${id},env=${p.name} <command>\n` +
            `# build with: docker build --secret id=${id},env=${p.name} .`,
        });
      }
    }
    return out;
  },
};

/** The SHELL in effect at an instruction (exec array), or null for the default /bin/sh -c. */
function shellAt(instr: Instr): string[] | null {
  const shell = instr.stage ? lastInChain(instr.stage, (i) => i.keyword === 'SHELL', instr) : undefined;
  return shell?.exec ?? null;
}

const pipefail: Rule = {
  id: 'pipe-without-pipefail',
  refs: ['DL4006'],
  severity: 'warning',
  title: 'Pipe in RUN without pipefail',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.runs()) {
      if (instr.exec && !/^(\/bin\/)?(ba)?sh$/.test(instr.exec[0] ?? '')) continue;
      // Windows runs RUN with cmd (or PowerShell): no POSIX pipe semantics to fix.
      if (instr.stage && isWindows(instr.stage)) continue;
      const shell = shellAt(instr);
      if (shell && (shell.includes('pipefail') || !/(^|\/)(ba|z|k|a)?sh$/.test(shell[0] ?? ''))) continue;
      const cmds = ctx.commands(instr);
      const pipe = cmds.findIndex((c) => c.pipeOut);
      if (pipe < 0 || cmds.slice(0, pipe).some(setsPipefail)) continue;
      const alpine = instr.stage ? isAlpine(instr.stage) : false;
      out.push({
        instr,
        detail:
          `\`${cmds[pipe]!.words.join(' ')} | ${cmds[pipe + 1]?.words.join(' ') ?? '…'}\`: /bin/sh only checks ` +
          `the last command of a pipe, so a failed download or build step before the | does not fail the build.`,
        fix:
          alpine || instr.heredocs.length > 0
            ? `RUN set -o pipefail && ${ctx.oneLine(instr)}`
            : `SHELL ["/bin/bash", "-o", "pipefail", "-c"]\n${instr.text}`,
      });
    }
    return out;
  },
};

const wgetCurl: Rule = {
  id: 'wget-and-curl',
  refs: ['DL4001', 'DS014'],
  severity: 'warning',
  title: 'Both wget and curl',
  check(ctx) {
    const out: Finding[] = [];
    for (const stage of ctx.model.stages) {
      const uses = (tool: string) =>
        ctx
          .runs(stage)
          .find(
            (i) =>
              ctx.commands(i).some((c) => c.name === tool) ||
              ctx.invocations(i).some((v) => osInstall(v) && packageArgs(v).some((p) => p.split('=')[0] === tool)),
          );
      const wget = uses('wget');
      const curl = uses('curl');
      if (!wget || !curl) continue;
      const later = wget.index > curl.index ? wget : curl;
      out.push({
        instr: later,
        detail:
          `This stage uses wget (line ${wget.line}) and curl (line ${curl.line}): ` + `two tools, two sets of libraries, for the same job.`,
        fix:
          'Use curl only: `wget -qO- URL` → `curl -fsSL URL`, `wget -O FILE ' +
          'URL` → `curl -fsSLo FILE URL`; and drop wget from the package list.',
      });
    }
    return out;
  },
};

export const SECURITY_RULES: Rule[] = [rootUser, sudo, secrets, pipefail, wgetCurl];
