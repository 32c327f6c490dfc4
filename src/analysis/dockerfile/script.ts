import type { Instr } from './model.js';
import { isShell, parseShell, shellQuote, type Command } from './shell.js';

const HEREDOC_MARK = /<<-?\s*(["']?)([A-Za-z_][A-Za-z0-9_]*)\1/g;

/**
 * The shell source a RUN executes, as separate scripts:
 * - shell form: the arguments with line continuations joined and the comment lines
 *   Docker drops from inside a continued instruction removed;
 * - heredocs: `RUN <<EOF` and `RUN <<EOF bash` run the body as a script; for any
 *   other command (`python3 <<EOF`, `cat <<EOF > file`) the body is data, not shell;
 * - exec form: `["sh", "-c", "..."]` is the string; other arrays are one command.
 */
export function runScripts(instr: Instr, escape: string): string[] {
  if (instr.exec) {
    const [first, ...rest] = instr.exec;
    if (first !== undefined && isShell(first) && rest[0] === '-c' && rest[1] !== undefined) return [rest[1]];
    return [instr.exec.map(shellQuote).join(' ')];
  }
  if (instr.heredocs.length > 0) {
    const firstLine = instr.body.split('\n', 1)[0]!;
    const command = firstLine.replace(HEREDOC_MARK, '').trim();
    const program = command.split(/\s+/)[0] ?? '';
    const scripts = command ? [command] : [];
    if (!command || isShell(program)) scripts.push(...instr.heredocs.map((h) => h.content));
    return scripts;
  }
  return [joinContinuations(instr.body, escape)];
}

/** Joins `\`-newline continuations; drops comment and blank lines inside them, as Docker does. */
export function joinContinuations(body: string, escape: string): string {
  const lines = body.split('\n');
  let out = '';
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i]!;
    if (i > 0 && (/^\s*#/.test(line) || line.trim() === '')) continue;
    const trimmed = line.replace(/[ \t]+$/, '');
    const continued = trimmed.endsWith(escape);
    line = continued ? trimmed.slice(0, -1) : line;
    out += continued ? line : `${line}\n`;
  }
  return out.trimEnd();
}

const cache = new WeakMap<Instr, Command[]>();

/** The simple commands a RUN executes (empty for other instructions). */
export function commandsOf(instr: Instr, escape: string): Command[] {
  if (instr.keyword !== 'RUN') return [];
  let cmds = cache.get(instr);
  if (!cmds) {
    cmds = runScripts(instr, escape).flatMap((s) => parseShell(s));
    cache.set(instr, cmds);
  }
  return cmds;
}

/** The RUN's arguments as one line, for rewritten suggestions (continuations kept out). */
export function oneLine(instr: Instr, escape: string): string {
  const text = instr.exec ? runScripts(instr, escape)[0]! : joinContinuations(instr.body, escape);
  return text.replace(/\s+/g, ' ').trim();
}
