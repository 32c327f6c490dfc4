import { readdir, readFile } from 'node:fs/promises';

/**
 * PIDs whose argv is exactly `argv`, read from /proc. Tests give their processes an argv
 * no other process on the machine has (a random number in it), so a lookup never finds
 * another test's or another service's process, as a name-based lookup of a common command would.
 */
export async function pidsWithArgv(argv: string[]): Promise<number[]> {
  const want = `${argv.join('\0')}\0`;
  const pids: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    // A process can exit between readdir and readFile: that is "not there".
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '');
    if (cmdline === want) pids.push(Number(name));
  }
  return pids;
}
