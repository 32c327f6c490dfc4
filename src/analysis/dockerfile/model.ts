import { DockerfileParser, type Instruction, type Heredoc } from 'dockerfile-ast';
import { expand, type Vars } from './vars.js';

/**
 * The Dockerfile as the rules see it: instructions grouped into build stages, each
 * with its flags, exec-form arguments, heredoc bodies, the ARG/ENV values visible at
 * that point and the rule ids suppressed for it. dockerfile-ast does the parsing
 * (continuations, escape directive, heredocs); this adds the build semantics.
 */
export interface Instr {
  index: number;
  keyword: string;
  /** 1-based first and last line. */
  line: number;
  endLine: number;
  /** The whole instruction as written (all its lines). */
  text: string;
  /** The arguments as written, after the flags (continuations and heredocs included). */
  body: string;
  flags: { name: string; value: string | null }[];
  /** Exec (JSON array) form arguments; null for shell form. */
  exec: string[] | null;
  heredocs: { name: string; content: string }[];
  /** Arguments split on whitespace by the parser (quotes kept). */
  args: string[];
  /** ENV/ARG/LABEL key-value pairs. */
  props: { name: string; value: string | null }[];
  stage: Stage | null;
  /** ARG and ENV values visible to this instruction (null = declared without value). */
  vars: Vars;
  /** Rule ids suppressed for this instruction by a comment right above it. */
  ignores: Set<string>;
}

export interface Stage {
  index: number;
  /** Lower-cased `AS` name. */
  name: string | null;
  from: Instr;
  /** The base image with ARGs expanded where they have defaults. */
  image: string;
  /** False when the image still depends on an ARG without default. */
  imageResolved: boolean;
  /** The earlier stage this one builds on (`FROM builder`), if any. */
  base: Stage | null;
  /** The stage's instructions after FROM. */
  instrs: Instr[];
  final: boolean;
  /** Final stage, or one it is built on: its layers end up in the shipped image. */
  inFinalImage: boolean;
}

export interface Model {
  instrs: Instr[];
  stages: Stage[];
  final: Stage | null;
  /** Rule ids suppressed by `# stevedore-ignore` comments before the first FROM. */
  fileIgnores: Set<string>;
  escape: string;
}

const IGNORE_COMMENT = /^\s*#\s*stevedore-ignore\s+(.+)$/;

export function buildModel(source: string): Model {
  const text = source.replace(/\r\n?/g, '\n');
  const lines = text.split('\n');
  const df = DockerfileParser.parse(text);
  const escape = df.getEscapeCharacter();
  const nodes = df.getInstructions();
  const inInstr = new Uint8Array(lines.length + 1);
  for (const n of nodes) for (let l = n.getRange().start.line; l <= n.getRange().end.line; l++) inInstr[l] = 1;

  const firstFrom = nodes.find((n) => n.getKeyword() === 'FROM');
  const fileIgnores = new Set<string>();
  const fromLine = firstFrom ? firstFrom.getRange().start.line : lines.length;
  for (let l = 0; l < fromLine; l++) if (!inInstr[l]) addIgnores(lines[l]!, fileIgnores);

  const model: Model = { instrs: [], stages: [], final: null, fileIgnores, escape };
  const globals = new Map<string, string | null>();
  let vars = new Map<string, string | null>();
  let stage: Stage | null = null;

  for (const node of nodes) {
    const keyword = node.getKeyword();
    const instr = toInstr(node, lines, model.instrs.length, escape);
    instr.ignores = commentIgnores(lines, inInstr, node.getRange().start.line);
    if (keyword === 'FROM') {
      const args = instr.args;
      const asAt = args.findIndex((a) => a.toUpperCase() === 'AS');
      const raw = args[0] ?? '';
      const { value, complete } = expand(raw, globals);
      const name = asAt > 0 && args[asAt + 1] ? args[asAt + 1]!.toLowerCase() : null;
      const base = model.stages.find((s) => s.name !== null && s.name === value.toLowerCase()) ?? null;
      stage = {
        index: model.stages.length,
        name,
        from: instr,
        image: value,
        imageResolved: complete,
        base,
        instrs: [],
        final: false,
        inFinalImage: false,
      };
      model.stages.push(stage);
      // A stage starts with its base stage's ENV; global ARGs are visible only once re-declared.
      vars = new Map(base ? [...lastVars(base)] : []);
      instr.stage = stage;
      instr.vars = new Map(globals);
    } else {
      instr.stage = stage;
      if (keyword === 'ARG') {
        for (const p of instr.props) {
          const target = stage ? vars : globals;
          if (p.value !== null) target.set(p.name, expand(p.value, stage ? vars : globals).value);
          else target.set(p.name, stage && globals.has(p.name) ? globals.get(p.name)! : null);
        }
      }
      instr.vars = stage ? new Map(vars) : new Map(globals);
      if (keyword === 'ENV' && stage) for (const p of instr.props) vars.set(p.name, p.value === null ? null : expand(p.value, vars).value);
      stage?.instrs.push(instr);
    }
    model.instrs.push(instr);
  }
  const final = model.stages.at(-1) ?? null;
  model.final = final;
  if (final) final.final = true;
  for (let s: Stage | null = final; s; s = s.base) s.inFinalImage = true;
  return model;
}

/** The stage and the stages it is built on, nearest first. */
export function chain(stage: Stage): Stage[] {
  const out: Stage[] = [];
  for (let s: Stage | null = stage; s && out.length < 64; s = s.base) out.push(s);
  return out;
}

function lastVars(stage: Stage): Vars {
  const last = stage.instrs.at(-1) ?? stage.from;
  const vars = new Map(last.vars);
  if (last.keyword === 'ENV') for (const p of last.props) vars.set(p.name, p.value);
  return vars;
}

function toInstr(node: Instruction, lines: string[], index: number, escape: string): Instr {
  const range = node.getRange();
  const keyword = node.getKeyword();
  const args = node.getArguments();
  const withFlags = node as Instruction & { getFlags?: () => { getName(): string; getValue(): string | null }[] };
  const withDocs = node as Instruction & { getHeredocs?: () => Heredoc[] };
  const withProps = node as Instruction & { getProperties?: () => { getName(): string; getValue(): string | null }[] };
  const body = args.length > 0 ? slice(lines, args[0]!.getRange().start, range.end) : '';
  let exec: string[] | null = null;
  if (/^\s*\[/.test(body) && !body.includes('<<')) {
    try {
      const parsed: unknown = JSON.parse(body.split(`${escape}\n`).join(''));
      if (Array.isArray(parsed) && parsed.every((a) => typeof a === 'string')) exec = parsed;
    } catch {
      // Not valid JSON: Docker runs it in shell form, and so do we.
    }
  }
  const heredocs = (withDocs.getHeredocs?.() ?? []).map((h) => {
    const c = h.getContentRange();
    return { name: h.getName(), content: c ? slice(lines, c.start, c.end) : '' };
  });
  return {
    index,
    keyword,
    line: range.start.line + 1,
    endLine: range.end.line + 1,
    text: slice(lines, { line: range.start.line, character: 0 }, range.end),
    body,
    flags: (withFlags.getFlags?.() ?? []).map((f) => ({ name: f.getName(), value: f.getValue() })),
    exec,
    heredocs,
    args: args.map((a) => a.getValue()),
    props: ['ENV', 'ARG', 'LABEL'].includes(keyword)
      ? (withProps.getProperties?.() ?? []).map((p) => ({ name: p.getName(), value: p.getValue() }))
      : [],
    stage: null,
    vars: new Map(),
    ignores: new Set(),
  };
}

function slice(lines: string[], start: { line: number; character: number }, end: { line: number; character: number }): string {
  if (start.line === end.line) return lines[start.line]!.slice(start.character, end.character);
  const parts = [lines[start.line]!.slice(start.character)];
  for (let l = start.line + 1; l < end.line; l++) parts.push(lines[l]!);
  parts.push(lines[end.line]!.slice(0, end.character));
  return parts.join('\n');
}

/** Ids from the run of comment lines directly above an instruction (no blank line between). */
function commentIgnores(lines: string[], inInstr: Uint8Array, line: number): Set<string> {
  const ids = new Set<string>();
  for (let l = line - 1; l >= 0 && !inInstr[l] && /^\s*#/.test(lines[l]!); l--) addIgnores(lines[l]!, ids);
  return ids;
}

function addIgnores(line: string, into: Set<string>): void {
  const m = IGNORE_COMMENT.exec(line);
  if (m) for (const id of m[1]!.split(/[\s,]+/)) if (id) into.add(id);
}

/** Flag values by name (`--mount` may repeat). */
export const flagValues = (instr: Instr, name: string): string[] => instr.flags.filter((f) => f.name === name).map((f) => f.value ?? '');
