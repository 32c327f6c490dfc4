import type { Command } from './shell.js';

/**
 * A package-manager call read from a shell command: `apt-get -y install curl` becomes
 * { tool: 'apt-get', sub: 'install', opts: ['-y'], args: ['curl'] }. Options that take a
 * value in the next word (`-o X=Y`, `--virtual .deps`, `-r req.txt`) are kept joined
 * with `=` so that the value is never mistaken for a package.
 */
export interface Invocation {
  tool: Tool;
  sub: string;
  opts: string[];
  args: string[];
  cmd: Command;
}

export type Tool = 'apt-get' | 'apt' | 'apk' | 'yum' | 'dnf' | 'microdnf' | 'zypper' | 'pip' | 'npm' | 'yarn' | 'pnpm';

const VALUE_OPTS: Record<Tool, Set<string>> = {
  'apt-get': new Set(['-o', '-t', '-c', '--option', '--target-release', '--default-release', '--config-file']),
  apt: new Set(['-o', '-t', '-c', '--option', '--target-release', '--config-file']),
  apk: new Set(['-t', '--virtual', '-X', '--repository', '-p', '--root', '--arch', '--cache-dir', '--keys-dir', '--repositories-file']),
  yum: new Set([
    '-c',
    '--config',
    '--installroot',
    '--releasever',
    '--setopt',
    '-x',
    '--exclude',
    '--enablerepo',
    '--disablerepo',
    '--repo',
  ]),
  dnf: new Set([
    '-c',
    '--config',
    '--installroot',
    '--releasever',
    '--setopt',
    '-x',
    '--exclude',
    '--enablerepo',
    '--disablerepo',
    '--repo',
  ]),
  microdnf: new Set(['--setopt', '--enablerepo', '--disablerepo', '--releasever', '--installroot']),
  zypper: new Set(['--root', '-R', '--repo', '-r']),
  pip: new Set([
    '-r',
    '--requirement',
    '-c',
    '--constraint',
    '-i',
    '--index-url',
    '--extra-index-url',
    '-f',
    '--find-links',
    '-t',
    '--target',
    '--prefix',
    '--root',
    '--trusted-host',
    '--platform',
    '--python-version',
    '--implementation',
    '--abi',
    '--only-binary',
    '--no-binary',
    '-e',
    '--editable',
    '--src',
    '--cache-dir',
    '--progress-bar',
    '--log',
    '--timeout',
    '--retries',
  ]),
  npm: new Set(['--prefix', '--cache', '-w', '--workspace', '--registry', '--omit', '--include', '--loglevel']),
  yarn: new Set(['--cwd', '--cache-folder', '--modules-folder', '--network-timeout']),
  pnpm: new Set(['--dir', '-C', '--filter', '--store-dir']),
};

const TOOLS = new Set<string>(Object.keys(VALUE_OPTS));
const PIP = /^pip(\d+(\.\d+)?)?$/;
const PYTHON = /^python(\d+(\.\d+)?)?$/;

/** Reads a command as a package-manager call, or null when it is not one. */
export function invocation(cmd: Command): Invocation | null {
  let tool: Tool;
  let rest: string[];
  if (PIP.test(cmd.name)) {
    tool = 'pip';
    rest = cmd.words.slice(1);
  } else if (PYTHON.test(cmd.name) && cmd.words[1] === '-m' && cmd.words[2] !== undefined && PIP.test(cmd.words[2])) {
    tool = 'pip';
    rest = cmd.words.slice(3);
  } else if (TOOLS.has(cmd.name)) {
    tool = cmd.name as Tool;
    rest = cmd.words.slice(1);
  } else return null;

  const valued = VALUE_OPTS[tool];
  const opts: string[] = [];
  const positional: string[] = [];
  let endOfOpts = false;
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!;
    if (!endOfOpts && w === '--') endOfOpts = true;
    else if (!endOfOpts && w.startsWith('-') && w.length > 1) {
      if (valued.has(w) && i + 1 < rest.length) opts.push(`${w}=${rest[++i]}`);
      else opts.push(w);
    } else positional.push(w);
  }
  let sub = positional.shift() ?? '';
  if (tool === 'npm') sub = NPM_ALIASES[sub] ?? sub;
  if (tool === 'yarn' && (sub === '' || sub === 'install')) sub = 'install';
  if (tool === 'zypper') sub = sub === 'in' ? 'install' : sub === 'ref' ? 'refresh' : sub;
  return { tool, sub, opts, args: positional, cmd };
}

const NPM_ALIASES: Record<string, string> = {
  i: 'install',
  add: 'install',
  isntall: 'install',
  'clean-install': 'ci',
  'install-clean': 'ci',
  ic: 'ci',
};

/** Whether an option is present, in `--name`, `--name=value` or (for a letter) `-xyz` cluster form. */
export function hasOpt(inv: Invocation, ...names: string[]): boolean {
  return inv.opts.some((o) =>
    names.some(
      (n) => o === n || o.startsWith(`${n}=`) || (n.length === 2 && /^-[a-zA-Z]+$/.test(o) && !o.startsWith('--') && o.includes(n[1]!)),
    ),
  );
}

/** The value of a valued option (`--virtual .deps` → `.deps`). */
export function optValue(inv: Invocation, ...names: string[]): string | undefined {
  for (const o of inv.opts) for (const n of names) if (o.startsWith(`${n}=`)) return o.slice(n.length + 1);
  return undefined;
}

export const isApt = (inv: Invocation): boolean => inv.tool === 'apt-get' || inv.tool === 'apt';

/** Invocations that put packages on the system, for every OS package manager. */
export function osInstall(inv: Invocation): boolean {
  if (isApt(inv) || inv.tool === 'zypper') return inv.sub === 'install';
  if (inv.tool === 'apk') return inv.sub === 'add';
  if (inv.tool === 'yum' || inv.tool === 'dnf' || inv.tool === 'microdnf')
    return ['install', 'groupinstall', 'localinstall', 'reinstall'].includes(inv.sub);
  return false;
}

/** Invocations that take packages off again (apt-get purge, apk del, yum remove). */
export function osRemove(inv: Invocation): boolean {
  if (isApt(inv)) return ['remove', 'purge', 'autoremove'].includes(inv.sub);
  if (inv.tool === 'apk') return inv.sub === 'del';
  if (inv.tool === 'yum' || inv.tool === 'dnf' || inv.tool === 'microdnf' || inv.tool === 'zypper')
    return ['remove', 'erase', 'rm'].includes(inv.sub);
  return false;
}

/** OS package arguments that name packages (not local .deb/.rpm files or paths). */
export function packageArgs(inv: Invocation): string[] {
  return inv.args.filter((a) => !a.startsWith('/') && !a.startsWith('./') && !/\.(deb|rpm|apk)$/.test(a) && !a.includes('$'));
}
