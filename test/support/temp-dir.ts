import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Temp dirs this process made, removed when it exits (pass or fail, from a hook, a
 * fixture at module level or a test body alike). node --test runs each file in its own
 * process, so a file's dirs last as long as the file does, and no run leaves any behind.
 */
const made = new Set<string>();

/** A fresh dir `$TMPDIR/<prefix>XXXXXX`, removed when this process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  if (!made.size) process.once('exit', removeAll);
  made.add(dir);
  return dir;
}

function removeAll(): void {
  for (const dir of made) removeDir(dir);
}

/**
 * Removes `dir` and everything in it, root's files from containers included. A mount left
 * under it (the network-namespace bind mount of a RUN step whose buildkitd died) is
 * unmounted first: only mounts inside the dir, which are ours. Never throws; says what is left.
 */
export function removeDir(dir: string): void {
  try {
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    try {
      for (const mount of mountsUnder(dir)) spawnSync('umount', ['-l', mount], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    } catch (err) {
      process.stderr.write(`left behind: ${dir} (${(err as Error).message})\n`);
    }
  }
  made.delete(dir);
}

/** Mount points at or under `dir`, deepest first (/proc/self/mountinfo escapes spaces as \040). */
export function mountsUnder(dir: string): string[] {
  let info: string;
  try {
    info = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  return info
    .split('\n')
    .map((line) => line.split(' ')[4]?.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))))
    .filter((point): point is string => !!point && (point === dir || point.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
}
