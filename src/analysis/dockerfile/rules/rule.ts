import type { AnalyzeOptions, Severity } from '../types.js';
import { chain, flagValues, type Instr, type Model, type Stage } from '../model.js';
import { invocation, type Invocation } from '../packages.js';
import { commandsOf, oneLine } from '../script.js';
import type { Command } from '../shell.js';

/** One problem a rule found; the analyzer adds the rule's id, refs, severity and title. */
export interface Finding {
  /** The instruction concerned (its comments can suppress the finding); null = whole build. */
  instr: Instr | null;
  detail: string;
  fix: string;
  savings?: number | null;
  /** Overrides the rule title when the finding needs a more specific one. */
  title?: string;
}

export interface Rule {
  id: string;
  refs: string[];
  severity: Severity;
  title: string;
  check(ctx: RuleContext): Finding[];
}

/** What rules get: the model plus cached views of RUN commands. */
export class RuleContext {
  private readonly invocationCache = new WeakMap<Instr, Invocation[]>();

  constructor(
    readonly model: Model,
    readonly options: AnalyzeOptions,
  ) {}

  commands(instr: Instr): Command[] {
    return commandsOf(instr, this.model.escape);
  }

  invocations(instr: Instr): Invocation[] {
    let invs = this.invocationCache.get(instr);
    if (!invs) {
      invs = this.commands(instr).flatMap((c) => invocation(c) ?? []);
      this.invocationCache.set(instr, invs);
    }
    return invs;
  }

  runs(stage?: Stage): Instr[] {
    return (stage ? stage.instrs : this.model.instrs).filter((i) => i.keyword === 'RUN');
  }

  /** Stages whose layers end up in the final image (where cache left behind costs size). */
  finalImageStages(): Stage[] {
    return this.model.stages.filter((s) => s.inFinalImage);
  }

  oneLine(instr: Instr): string {
    return oneLine(instr, this.model.escape);
  }

  /** A RUN with one more command at the end: a heredoc script gets a line, shell form `&& cmd`. */
  appendCommand(instr: Instr, command: string): string {
    const doc = instr.heredocs.at(-1);
    if (doc && !instr.exec) {
      const end = instr.text.lastIndexOf(doc.name);
      return `${instr.text.slice(0, end)}${command}\n${instr.text.slice(end)}`;
    }
    if (instr.exec) return `RUN ${instr.exec.join(' ')} && ${command}`;
    return `${instr.text.replace(/\s+$/, '')} ${this.model.escape}\n    && ${command}`;
  }
}

/** Whether any command of the RUN has this name and, optionally, passes the test. */
export function runs(ctx: RuleContext, instr: Instr, name: string, test: (c: Command) => boolean = () => true): boolean {
  return ctx.commands(instr).some((c) => c.name === name && test(c));
}

/** `rm -rf <path...>` removing something under one of the prefixes. */
export function removes(ctx: RuleContext, instr: Instr, ...prefixes: string[]): boolean {
  return runs(ctx, instr, 'rm', (c) =>
    c.words.slice(1).some((w) => prefixes.some((p) => w === p || w.startsWith(p.endsWith('/') ? p : `${p}/`) || w.startsWith(`${p}*`))),
  );
}

/** A `--mount=type=cache` whose target is under one of the given directories. */
export function hasCacheMount(instr: Instr, ...targets: string[]): boolean {
  return flagValues(instr, 'mount').some((m) => {
    const opts = Object.fromEntries(m.split(',').map((kv) => kv.split('=') as [string, string?])) as Record<string, string | undefined>;
    const target = opts['target'] ?? opts['dst'] ?? opts['destination'] ?? '';
    return opts['type'] === 'cache' && targets.some((t) => target === t || target.startsWith(`${t}/`) || t.startsWith(`${target}/`));
  });
}

/** The first instruction in the stage chain (nearest stage first, latest instruction first) that matches. */
export function lastInChain(stage: Stage, test: (i: Instr) => boolean, before?: Instr): Instr | undefined {
  for (const s of chain(stage)) {
    for (let k = s.instrs.length - 1; k >= 0; k--) {
      const i = s.instrs[k]!;
      if (before && s === stage && i.index >= before.index) continue;
      if (test(i)) return i;
    }
  }
  return undefined;
}

/** The value of an ENV/ARG visible to the instruction. */
export function varValue(instr: Instr, name: string): string | null | undefined {
  return instr.vars.get(name);
}

/** `library/python` → `python`; `gcr.io/distroless/static` → `distroless/static`. */
export function imageParts(image: string): { name: string; repo: string; tag: string | null; digest: string | null } {
  let rest = image;
  let digest: string | null = null;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | null = null;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  const hasRegistry = parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!);
  const repo = (hasRegistry ? parts.slice(1) : parts).join('/').replace(/^library\//, '');
  return { name: rest, repo, tag, digest };
}

/** Official Docker Hub image of this name (`python`, `library/python`, `docker.io/library/python`). */
export function isOfficial(image: string, ...names: string[]): boolean {
  const { name, repo } = imageParts(image);
  const hub = !name.includes('/') || /^(docker\.io|index\.docker\.io)\/library\//.test(name) || name.startsWith('library/');
  return hub && names.includes(repo);
}

/** Alpine-based images: busybox ash instead of bash, apk, adduser -D. */
export function isAlpine(stage: Stage): boolean {
  return chain(stage).some((s) => /alpine/.test(s.image));
}

/** Windows images: cmd/PowerShell instead of sh, ContainerUser instead of useradd. */
export function isWindows(stage: Stage): boolean {
  return chain(stage).some((s) => /windows|nanoserver|servercore/i.test(s.image));
}

export const quoteList = (items: string[]): string => items.map((i) => `\`${i}\``).join(', ');
