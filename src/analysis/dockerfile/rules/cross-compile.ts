import { chain, flagValues, type Instr, type Model, type Stage } from '../model.js';
import type { Command } from '../shell.js';
import { expand } from '../vars.js';
import { crossCompileFix, type Toolchain } from './cross-compile-fixes.js';
import { isWindows, type Finding, type Rule, type RuleContext } from './rule.js';

/**
 * compile-under-emulation: in a multi-platform build every stage runs once per target
 * platform, on that platform's base image; for a foreign platform BuildKit runs its RUN
 * steps under QEMU user emulation. Compilers are the worst case (bench/cross-compile, a
 * small C program for amd64+arm64: gcc ~8x and apt-get ~4x slower under QEMU than natively,
 * the cold build ~3x the cross-compiled one). A compile stage should run on the build
 * machine's own platform (`FROM --platform=$BUILDPLATFORM`) and cross-compile for
 * TARGETARCH; only its output is copied into the target-platform final stage. Info: a single-platform build
 * for the host's own architecture pays nothing, and the analyzer does not know which
 * platforms a build asks for.
 */

const C_COMPILER = /^(?:[\w.]+-)*(?:gcc|g\+\+|cc|c\+\+|clang|clang\+\+)(?:-\d+(?:\.\d+)*)?$/;
const C_BUILD = new Set(['make', 'gmake', 'cmake', 'ninja', 'meson', 'configure']);

/** The toolchain a command compiles with, if it compiles anything. */
export function compiles(c: Command): Toolchain | undefined {
  const args = c.words.slice(1).filter((w) => !w.startsWith('-'));
  const sub = args[0] ?? '';
  if (C_COMPILER.test(c.name) || C_BUILD.has(c.name)) return 'c';
  if (c.name === 'go' && (sub === 'build' || sub === 'install')) return 'go';
  if ((c.name === 'cargo' && ['build', 'b', 'install'].includes(sub)) || c.name === 'rustc') return 'rust';
  if (c.name === 'javac') return 'java';
  if (/^mvnw?$/.test(c.name) && args.some((a) => ['compile', 'package', 'verify', 'install', 'deploy'].includes(a))) return 'java';
  if (/^gradlew?$/.test(c.name) && args.length > 0) return 'java';
  if (c.name === 'dotnet' && (sub === 'publish' || sub === 'build')) return 'dotnet';
  if (['npm', 'yarn', 'pnpm'].includes(c.name)) {
    const script = sub === 'run' || sub === 'run-script' ? args[1] : c.name === 'npm' ? undefined : sub;
    if (script && /^build(\b|:)/.test(script)) return 'node';
  }
  return undefined;
}

/** Stages the default target needs: the final one, what it is built on, what it copies or mounts from. */
function neededStages(model: Model): Set<Stage> {
  const needed = new Set<Stage>();
  const visit = (stage: Stage | null | undefined) => {
    if (!stage || needed.has(stage)) return;
    needed.add(stage);
    visit(stage.base);
    for (const instr of stage.instrs) {
      const refs = [...flagValues(instr, 'from'), ...flagValues(instr, 'mount').flatMap((m) => /(?:^|,)from=([^,]+)/.exec(m)?.[1] ?? [])];
      for (const raw of refs) {
        const value = expand(raw, instr.vars).value.toLowerCase();
        visit(/^\d+$/.test(value) ? model.stages[Number(value)] : model.stages.find((s) => s.name === value));
      }
    }
  };
  visit(model.final);
  return needed;
}

/** Whether the stage (or one it is built on) already picks its platform, other than the default target platform. */
function platformChosen(stage: Stage): boolean {
  return chain(stage).some((s) => flagValues(s.from, 'platform').some((p) => !/^\$\{?TARGETPLATFORM\}?$/.test(p.trim())));
}

/** The compile commands of a stage's RUN steps, with the toolchain of the first one. */
function compileSteps(ctx: RuleContext, stage: Stage): { toolchain: Toolchain; runs: Instr[]; names: string[] } | undefined {
  let toolchain: Toolchain | undefined;
  const runs: Instr[] = [];
  const names = new Set<string>();
  for (const instr of ctx.runs(stage)) {
    let found = false;
    for (const c of ctx.commands(instr)) {
      const t = compiles(c);
      if (!t) continue;
      toolchain ??= t;
      found = true;
      names.add(c.words.slice(0, t === 'c' || t === 'java' ? 1 : 2).join(' '));
    }
    if (found) runs.push(instr);
  }
  return toolchain ? { toolchain, runs, names: [...names] } : undefined;
}

const compileUnderEmulation: Rule = {
  id: 'compile-under-emulation',
  refs: [],
  severity: 'info',
  title: 'Compile stage runs under QEMU for every foreign platform',
  check(ctx) {
    const out: Finding[] = [];
    const needed = neededStages(ctx.model);
    for (const stage of ctx.model.stages) {
      // Windows images are built on Windows hosts for their own platform: no QEMU involved.
      if (!needed.has(stage) || platformChosen(stage) || /^scratch$/i.test(stage.image) || isWindows(stage)) continue;
      const found = compileSteps(ctx, stage);
      if (!found) continue;
      const where = `line${found.runs.length > 1 ? 's' : ''} ${found.runs.map((r) => r.line).join(', ')}`;
      const what = found.names.map((n) => `\`${n}\``).join(', ');
      const cost =
        `In a multi-platform build (\`platforms: ["linux/amd64", "linux/arm64"]\`) this stage runs once per platform on that ` +
        `platform's base image, so for every platform other than the build machine's its RUN steps (${what} on ` +
        `${where}, and any package installs before them) run under QEMU emulation, often ~8x slower than natively.`;
      if (stage.inFinalImage) {
        out.push({
          instr: stage.from,
          title: 'Compiling in the final image: runs under QEMU for every foreign platform',
          detail:
            `${cost} This stage is (or builds) the final image, so it cannot simply move to \`--platform=$BUILDPLATFORM\` ` +
            `(the image would then hold the build machine's binaries, which the platform check rejects). Split it first: ` +
            `a build stage that compiles, and a final stage on a runtime base that copies only the result ` +
            `(see sdk-base-in-final-stage / build-tools-in-final-stage); then run the build stage on the build platform and cross-compile.`,
          fix: crossCompileFix(ctx, stage, found.toolchain, found.runs, { split: true }),
        });
        continue;
      }
      out.push({
        instr: stage.from,
        detail:
          `${cost} Run the stage on the build machine's platform with \`FROM --platform=$BUILDPLATFORM\` and compile for ` +
          `the target with \`ARG TARGETOS TARGETARCH\` (GOOS/GOARCH for Go, a cross gcc such as gcc-aarch64-linux-gnu, ` +
          `\`--target\` for clang and cargo); steps before the ARG are then shared by all targets and run once.`,
        fix: crossCompileFix(ctx, stage, found.toolchain, found.runs, { split: false }),
      });
    }
    return out;
  },
};

export const CROSS_COMPILE_RULES: Rule[] = [compileUnderEmulation];
