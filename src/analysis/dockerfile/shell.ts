/**
 * A small POSIX-shell reader for RUN scripts. It does not execute or fully parse shell:
 * it splits a script into simple commands (on `&&`, `||`, `;`, `|`, `&`, newlines and
 * subshell parentheses) and words with quotes removed, which is all the rules need to
 * ask "does this RUN call `apt-get install` without `--no-install-recommends`?".
 */

export interface Command {
  /** Words with quotes removed and wrappers (sudo, env, VAR=x) stripped. */
  words: string[];
  /** Basename of the program, e.g. `apt-get` for `/usr/bin/apt-get`. */
  name: string;
  /** Run through sudo. */
  sudo: boolean;
  /** Output goes into a pipe (`cmd | ...`). */
  pipeOut: boolean;
  /** Input comes from a pipe (`... | cmd`). */
  pipeIn: boolean;
}

const SHELLS = new Set(['sh', 'bash', 'ash', 'dash', 'zsh', 'ksh']);
const KEYWORDS = new Set(['if', 'then', 'else', 'elif', 'do', 'while', 'until', '!', '{', '}', 'time']);
const SUDO_VALUE_OPTS = new Set(['-u', '-g', '-C', '-h', '-p', '-r', '-t', '-U', '-D']);
const ASSIGNMENT = /^[A-Za-z_][A-Za-z0-9_]*=/;

export const isShell = (program: string): boolean => SHELLS.has(basename(program));

export function basename(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash >= 0 ? path.slice(slash + 1) : path;
}

/** Splits a shell script into simple commands; `sh -c '...'` bodies are read recursively. */
export function parseShell(src: string, depth = 0): Command[] {
  const out: Command[] = [];
  let words: string[] = [];
  let cur = '';
  let inWord = false;
  let dropNextWord = false;
  let pipeIn = false;

  const flushWord = () => {
    if (inWord) {
      if (dropNextWord) dropNextWord = false;
      else words.push(cur);
    }
    cur = '';
    inWord = false;
  };
  const endCommand = (op: string) => {
    flushWord();
    if (words.length > 0) {
      normalize(words, pipeIn, op === '|', out, depth);
      pipeIn = op === '|';
    } else if (op !== '|') {
      pipeIn = false;
    }
    words = [];
    dropNextWord = false;
  };

  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    const next = src[i + 1];
    if (c === '\\') {
      if (next === '\n') i++;
      else if (next !== undefined) {
        cur += next;
        inWord = true;
        i++;
      }
    } else if (c === "'") {
      const end = src.indexOf("'", i + 1);
      const stop = end < 0 ? src.length : end;
      cur += src.slice(i + 1, stop);
      inWord = true;
      i = stop;
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') {
        if (src[j] === '\\' && j + 1 < src.length) {
          cur += src[j + 1];
          j += 2;
        } else cur += src[j++];
      }
      inWord = true;
      i = j;
    } else if (c === '$' && next === '(') {
      // Command substitution stays inside its word: it is an argument, not a command here.
      const end = matchParen(src, i + 1);
      cur += src.slice(i, end + 1);
      inWord = true;
      i = end;
    } else if (c === '`') {
      const end = src.indexOf('`', i + 1);
      const stop = end < 0 ? src.length : end;
      cur += src.slice(i, stop + 1);
      inWord = true;
      i = stop;
    } else if (c === '#' && !inWord) {
      while (i + 1 < src.length && src[i + 1] !== '\n') i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      flushWord();
    } else if (c === '\n' || c === ';' || c === '(' || c === ')') {
      endCommand(';');
    } else if (c === '&') {
      if (next === '&') {
        endCommand('&&');
        i++;
      } else if (next === '>') {
        flushWord();
        i = skipRedirect(src, i);
        dropNextWord = true;
      } else endCommand('&');
    } else if (c === '|') {
      if (next === '|') {
        endCommand('||');
        i++;
      } else endCommand('|');
    } else if (c === '>' || c === '<') {
      // `2>&1`, `>/dev/null`, `< file`: the operator and its target are not arguments.
      if (inWord && /^\d+$/.test(cur)) {
        cur = '';
        inWord = false;
      } else flushWord();
      i = skipRedirect(src, i);
      if (src[i] === '&' && /[\d-]/.test(src[i + 1] ?? '')) i++;
      else dropNextWord = true;
    } else {
      cur += c;
      inWord = true;
    }
  }
  endCommand(';');
  return out;
}

function skipRedirect(src: string, i: number): number {
  while (i + 1 < src.length && /[<>&|]/.test(src[i + 1]!) && !(src[i + 1] === '&' && src[i + 2] === '&')) {
    if (src[i + 1] === '&' && /[\d-]/.test(src[i + 2] ?? '')) return i + 1;
    i++;
  }
  return i;
}

function matchParen(src: string, open: number): number {
  let depth = 0;
  for (let j = open; j < src.length; j++) {
    if (src[j] === '(') depth++;
    else if (src[j] === ')' && --depth === 0) return j;
  }
  return src.length - 1;
}

function normalize(raw: string[], pipeIn: boolean, pipeOut: boolean, out: Command[], depth: number): void {
  let words = raw;
  let sudo = false;
  for (;;) {
    const w = words[0];
    if (w === undefined) return;
    if (ASSIGNMENT.test(w) || KEYWORDS.has(w)) words = words.slice(1);
    else if (w === 'sudo') {
      sudo = true;
      let k = 1;
      while (k < words.length && words[k]!.startsWith('-')) k += SUDO_VALUE_OPTS.has(words[k]!) ? 2 : 1;
      words = words.slice(k);
    } else if (w === 'env') {
      let k = 1;
      while (k < words.length && (words[k]!.startsWith('-') || ASSIGNMENT.test(words[k]!))) k += words[k] === '-u' ? 2 : 1;
      words = words.slice(k);
    } else if (w === 'command' || w === 'exec' || w === 'nohup') words = words.slice(1);
    else if (w === 'nice') words = words.slice(words[1] === '-n' ? 3 : 1);
    else break;
  }
  const name = basename(words[0]!);
  const dashC = words.indexOf('-c');
  if (SHELLS.has(name) && dashC > 0 && words[dashC + 1] !== undefined && depth < 3) {
    const inner = parseShell(words[dashC + 1]!, depth + 1);
    if (inner.length > 0) {
      inner[0]!.pipeIn ||= pipeIn;
      inner[inner.length - 1]!.pipeOut ||= pipeOut;
      if (sudo) for (const c of inner) c.sudo = true;
      out.push(...inner);
      return;
    }
  }
  out.push({ words, name, sudo, pipeIn, pipeOut });
}

/** Whether `set -o pipefail` (or `-eo pipefail`, `-euxo pipefail`) is among the commands. */
export function setsPipefail(cmd: Command): boolean {
  if (cmd.name !== 'set') return false;
  const i = cmd.words.indexOf('pipefail');
  return i > 0 && /^-[a-z]*o$/.test(cmd.words[i - 1]!);
}

/** Quotes a word for display in a rewritten command line. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
