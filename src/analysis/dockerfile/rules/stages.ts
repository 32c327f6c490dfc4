import { chain, flagValues, type Instr } from '../model.js';
import { expand } from '../vars.js';
import { isAlpine, type Finding, type Rule } from './rule.js';

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length]!;
}

const copyFromUndefined: Rule = {
  id: 'copy-from-undefined-stage',
  refs: ['DL3022', 'DS006'],
  severity: 'error',
  title: 'COPY --from a stage that is not defined before it',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.model.instrs) {
      if (instr.keyword !== 'COPY' || !instr.stage) continue;
      for (const raw of flagValues(instr, 'from')) {
        const { value, complete } = expand(raw, instr.vars);
        // An image reference (registry, tag or digest) is a valid --from; so is an earlier stage index.
        if (!complete || /[:/@]/.test(value)) continue;
        const here = instr.stage.index;
        if (/^\d+$/.test(value)) {
          if (Number(value) < here) continue;
          out.push({
            instr,
            detail: `Stage index ${value} is not an earlier stage (this is stage ${here}).`,
            fix: instr.text.replace(`--from=${raw}`, `--from=${Math.max(0, here - 1)}`),
          });
          continue;
        }
        const name = value.toLowerCase();
        const stage = ctx.model.stages.find((s) => s.name === name);
        if (stage && stage.index < here) continue;
        const earlier = ctx.model.stages.filter((s) => s.index < here && s.name).map((s) => s.name!);
        const closest = earlier.sort((a, b) => distance(a, name) - distance(b, name))[0];
        const why = !stage
          ? `No stage is named \`${value}\``
          : stage.index === here
            ? `\`${value}\` is the stage this COPY is in`
            : `Stage \`${value}\` is defined later (line ${stage.from.line})`;
        out.push({
          instr,
          detail: `${why}; BuildKit then pulls an image called \`${value}\` from Docker Hub instead, or fails.`,
          fix: closest
            ? instr.text.replace(`--from=${raw}`, `--from=${closest}`)
            : `Name the stage that produces these files (\`FROM <image> AS ${value}\`) above ` +
              `line ${instr.line}, or use a full image reference such as \`--from=${value}:<tag>\`.`,
        });
      }
    }
    return out;
  },
};

const duplicateStage: Rule = {
  id: 'duplicate-stage-name',
  refs: ['DL3024', 'DS012'],
  severity: 'error',
  title: 'Two stages with the same name',
  check(ctx) {
    const seen = new Map<string, Instr>();
    const out: Finding[] = [];
    for (const stage of ctx.model.stages) {
      if (!stage.name) continue;
      const first = seen.get(stage.name);
      if (!first) seen.set(stage.name, stage.from);
      else
        out.push({
          instr: stage.from,
          detail:
            `Stage name \`${stage.name}\` is already used on line ${first.line}; ` +
            `COPY --from and --target then pick one of them silently.`,
          fix: stage.from.text.replace(/(\s[Aa][Ss]\s+)\S+/, `$1${stage.name}-${stage.index}`),
        });
    }
    return out;
  },
};

const PORT = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i;

function exposed(instr: Instr): { spec: string; valid: boolean; ports: number[] }[] {
  return instr.args.flatMap((arg) => {
    const { value, complete } = expand(arg, instr.vars);
    if (!complete) return [];
    const m = PORT.exec(value);
    if (!m) return [{ spec: value, valid: false, ports: [] }];
    const lo = Number(m[1]);
    const hi = m[2] ? Number(m[2]) : lo;
    return [{ spec: value, valid: lo >= 1 && hi <= 65535 && lo <= hi, ports: [lo, hi] }];
  });
}

const exposeInvalid: Rule = {
  id: 'expose-invalid-port',
  refs: ['DL3011', 'DS008'],
  severity: 'error',
  title: 'EXPOSE with an invalid port',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.model.instrs) {
      if (instr.keyword !== 'EXPOSE') continue;
      const specs = exposed(instr);
      const bad = specs.filter((s) => !s.valid);
      if (bad.length === 0) continue;
      const good = specs.filter((s) => s.valid).map((s) => s.spec);
      out.push({
        instr,
        detail:
          `${bad.map((b) => `\`${b.spec}\``).join(', ')} ${bad.length > 1 ? 'are not valid ports' : 'is not a valid port'}: ` +
          `ports are 1-65535, optionally a range and /tcp, /udp or /sctp.`,
        fix:
          good.length > 0
            ? `EXPOSE ${good.join(' ')}`
            : `Delete line ${instr.line} (or EXPOSE the port the application really listens on).`,
      });
    }
    return out;
  },
};

const exposeSsh: Rule = {
  id: 'expose-ssh-port',
  refs: ['DS004'],
  severity: 'warning',
  title: 'Port 22 (SSH) exposed',
  check(ctx) {
    const out: Finding[] = [];
    for (const instr of ctx.model.instrs) {
      if (instr.keyword !== 'EXPOSE') continue;
      const specs = exposed(instr);
      if (!specs.some((s) => s.valid && s.ports[0] === 22 && s.ports[1] === 22)) continue;
      const rest = specs.filter((s) => s.valid && !(s.ports[0] === 22 && s.ports[1] === 22)).map((s) => s.spec);
      out.push({
        instr,
        detail: 'An SSH server in a container is an extra attack surface; use `docker exec` / `kubectl exec` to get a shell.',
        fix: rest.length > 0 ? `EXPOSE ${rest.join(' ')}` : `Delete line ${instr.line} and the SSH server it is for.`,
      });
    }
    return out;
  },
};

const healthcheckMissing: Rule = {
  id: 'healthcheck-missing',
  refs: ['DS026'],
  severity: 'info',
  title: 'No HEALTHCHECK in the final image',
  check(ctx) {
    const final = ctx.model.final;
    if (!final || chain(final).some((s) => s.instrs.some((i) => i.keyword === 'HEALTHCHECK'))) return [];
    const expose = chain(final)
      .flatMap((s) => s.instrs)
      .find((i) => i.keyword === 'EXPOSE');
    const port = (expose && exposed(expose).find((s) => s.valid)?.ports[0]) ?? 8080;
    const probe = /distroless|scratch/.test(final.image)
      ? `["/app", "healthcheck"]`
      : isAlpine(final)
        ? `wget -qO- http://localhost:${port}/health || exit 1`
        : `curl -fsS http://localhost:${port}/health || exit 1`;
    return [
      {
        instr: final.from,
        detail:
          'Without a HEALTHCHECK, Docker (and Compose/Swarm) cannot tell a running but hung container ' +
          'from a healthy one. Orchestrators with their own probes (Kubernetes) can ignore this.',
        fix: `HEALTHCHECK --interval=30s --timeout=3s --retries=3 CMD ${probe}`,
      },
    ];
  },
};

export const STAGE_RULES: Rule[] = [copyFromUndefined, duplicateStage, exposeInvalid, exposeSsh, healthcheckMissing];
