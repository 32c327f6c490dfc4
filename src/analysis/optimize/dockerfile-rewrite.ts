/**
 * The safe, mechanical part of optimizing a Dockerfile: changes that shrink the image
 * or its build without changing what the image runs. Anything that could (a new USER,
 * reordered COPYs, npm ci instead of npm install) stays a suggestion for a person.
 */

interface Block {
  /** Instruction keyword in upper case, or '' for comments and blank lines. */
  keyword: string;
  /** The instruction's text with continuations joined (the arguments only). */
  args: string;
  /** The original lines, kept verbatim for blocks we do not change. */
  raw: string[];
  /** Heredoc bodies are opaque: never rewritten. */
  heredoc: boolean;
  changed?: boolean;
}

const HEREDOC = /<<-?\s*["']?([A-Za-z_][A-Za-z0-9_]*)["']?/;

/** Splits a Dockerfile into instructions (continuations joined) and comment/blank lines. */
export function splitBlocks(text: string): Block[] {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#.*)?$/.test(line)) {
      blocks.push({ keyword: '', args: '', raw: [line], heredoc: false });
      continue;
    }
    const raw = [line];
    let joined = line;
    while (/\\\s*$/.test(joined) && i + 1 < lines.length) {
      i++;
      raw.push(lines[i]!);
      // Comment lines inside a continued instruction are dropped by Docker's parser.
      joined = joined.replace(/\\\s*$/, ' ') + (/^\s*#/.test(lines[i]!) ? '' : lines[i]!.trim());
    }
    const doc = HEREDOC.exec(joined);
    if (doc) {
      const end = doc[1]!;
      while (i + 1 < lines.length && lines[i]!.trim() !== end) raw.push(lines[++i]!);
    }
    const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(joined)!;
    blocks.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim(), raw, heredoc: !!doc });
  }
  return blocks;
}

const isShellRun = (b: Block) => b.keyword === 'RUN' && !b.heredoc && !b.args.startsWith('[') && !/^--/.test(b.args);
const SHELL_META = /[$|&;<>*?`'"\\(){}[\]~]/;
const ARCHIVE = /\.(tar|tgz|tar\.(gz|bz2|xz|zst)|tbz2?|txz)$/i;

export interface Rewrite {
  dockerfile: string;
  /** What was changed, one line each, for the result. */
  changes: { line: number; change: string }[];
}

export function rewriteDockerfile(text: string): Rewrite {
  const blocks = splitBlocks(text);
  const changes: Rewrite['changes'] = [];
  const lineOf = (b: Block) => {
    let n = 1;
    for (const x of blocks) {
      if (x === b) return n;
      n += x.raw.length;
    }
    return n;
  };
  const note = (b: Block, change: string) => {
    b.changed = true;
    changes.push({ line: lineOf(b), change });
  };

  for (const b of blocks) {
    if (isShellRun(b)) {
      let args = b.args;
      if (/\bapt-get\s+(-\S+\s+)*install\b/.test(args) && !/--no-install-recommends/.test(args)) {
        args = args.replace(/\bapt-get(\s+(?:-\S+\s+)*)install\b/g, 'apt-get$1install --no-install-recommends');
        note(b, 'apt-get install --no-install-recommends');
      }
      if (/\bapt-get\s+(-\S+\s+)*install\b/.test(args) && !/\/var\/lib\/apt\/lists/.test(args)) {
        args = `${args} && rm -rf /var/lib/apt/lists/*`;
        note(b, 'remove the apt lists in the same RUN');
      }
      if (/\bapk\s+add\b/.test(args) && !/--no-cache/.test(args)) {
        args = args.replace(/\bapk\s+add\b/g, 'apk add --no-cache');
        note(b, 'apk add --no-cache');
      }
      if (/\bpip3?\s+install\b/.test(args) && !/--no-cache-dir/.test(args)) {
        args = args.replace(/\b(pip3?)\s+install\b/g, '$1 install --no-cache-dir');
        note(b, 'pip install --no-cache-dir');
      }
      b.args = args;
    }
    if (b.keyword === 'ADD' && !b.heredoc && !b.args.startsWith('[')) {
      const parts = b.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      const sources = parts.slice(0, -1);
      if (sources.length && sources.every((s) => !/^[a-z]+:\/\//i.test(s) && !ARCHIVE.test(s) && !s.startsWith('git@'))) {
        b.keyword = 'COPY';
        note(b, 'COPY instead of ADD for local files');
      }
    }
    if (
      (b.keyword === 'CMD' || b.keyword === 'ENTRYPOINT') &&
      !b.heredoc &&
      b.args &&
      !b.args.startsWith('[') &&
      !SHELL_META.test(b.args)
    ) {
      b.args = JSON.stringify(b.args.split(/\s+/)).replace(/","/g, '", "');
      note(b, `exec-form ${b.keyword}`);
    }
  }

  // Consecutive shell-form RUNs become one layer (an update alone in its RUN included).
  const merged: Block[] = [];
  for (const b of blocks) {
    const prev = merged[merged.length - 1];
    if (prev && isShellRun(prev) && isShellRun(b)) {
      prev.args = `${prev.args} \\\n    && ${b.args}`;
      note(prev, 'merge consecutive RUN instructions');
      continue;
    }
    merged.push(b);
  }
  const out = merged.map((b) => (b.changed ? `${b.keyword} ${b.args}` : b.raw.join('\n'))).join('\n');
  return { dockerfile: out, changes };
}
