import { randomBytes } from 'node:crypto';
import { chmod, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runProcess, toolEnv } from '../engines/process-runner.js';

/** The name the generated key is listed under in `GET /v1/signing-keys` and chosen by when a request names none. */
export const DEFAULT_KEY_NAME = 'default';

/** Where `serve` keeps its generated key pair: one directory, published by a single rename. */
export function signingDir(stateDir: string): string {
  return join(stateDir, 'signing');
}

/** The files of a complete pair, and the first line each must start with. */
const PAIR = [
  { file: 'cosign.key', starts: '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----' },
  { file: 'cosign.pub', starts: '-----BEGIN PUBLIC KEY-----' },
  { file: 'cosign.password', starts: '' },
] as const;
/** Directories a generation that did not finish leaves behind (the process died between mkdtemp and rename). */
const PARTIAL_PREFIX = 'signing.partial-';

export interface DefaultSigningKey {
  /** A keys file (STEVEDORE_SIGNING_KEYS_FILE format) naming the pair as the default key. */
  keysFile: string;
  publicKeyFile: string;
  /** Made by this call (false: an earlier start's pair is reused). */
  created: boolean;
  /** A directory that held an incomplete pair, moved aside before a new pair was made. */
  setAside?: string;
}

/**
 * The cosign key pair `serve` signs with when STEVEDORE_SIGNING_KEYS_FILE is unset: made
 * once with `cosign generate-key-pair` in a private temporary directory next to the final
 * one, with a random password that reaches cosign only through COSIGN_PASSWORD in its own
 * environment, then published by renaming the directory. A crash can therefore leave only
 * a `signing.partial-*` directory (removed here), never a half-written `signing/`; should
 * `signing/` be incomplete anyway (a file deleted by hand), it is moved aside, not
 * overwritten, and a new pair is made. Later starts reuse the pair: a key is never replaced
 * while it is whole, since the signatures made with it are verified with its public half.
 */
export async function ensureDefaultSigningKey(stateDir: string, cosign: string): Promise<DefaultSigningKey> {
  const dir = signingDir(stateDir);
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await removePartials(stateDir);
  let created = false;
  let setAside: string | undefined;
  const state = await pairState(dir);
  if (state === 'incomplete') {
    setAside = join(stateDir, `signing.incomplete-${new Date().toISOString().replace(/[:.]/g, '-')}`);
    await rename(dir, setAside);
  }
  if (state !== 'complete') created = await generate(stateDir, dir, cosign);
  // The keys file is derived (paths only, no secret): rewritten every start, so a moved
  // state dir still points at its own pair.
  const keysFile = join(dir, 'keys.json');
  const keys = {
    default: DEFAULT_KEY_NAME,
    keys: [
      {
        name: DEFAULT_KEY_NAME,
        key: join(dir, 'cosign.key'),
        password_file: join(dir, 'cosign.password'),
        // cosign wrote it with the key: an api process without cosign serves it from here.
        public_key: join(dir, 'cosign.pub'),
      },
    ],
  };
  await writeFile(`${keysFile}.tmp`, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  await rename(`${keysFile}.tmp`, keysFile);
  return { keysFile, publicKeyFile: join(dir, 'cosign.pub'), created, ...(setAside ? { setAside } : {}) };
}

/** `complete` when every file of the pair is there and looks like what cosign writes. */
export async function pairState(dir: string): Promise<'absent' | 'incomplete' | 'complete'> {
  if (!(await stat(dir).catch(() => undefined))) return 'absent';
  for (const { file, starts } of PAIR) {
    const text = await readFile(join(dir, file), 'utf8').catch(() => '');
    if (!text.trim() || !text.startsWith(starts)) return 'incomplete';
  }
  return 'complete';
}

async function removePartials(stateDir: string): Promise<void> {
  for (const name of await readdir(stateDir)) {
    if (name.startsWith(PARTIAL_PREFIX)) await rm(join(stateDir, name), { recursive: true, force: true });
  }
}

/** Makes the pair in a private temporary directory and renames it into place; false when another start won the race. */
async function generate(stateDir: string, dir: string, cosign: string): Promise<boolean> {
  const tmp = await mkdtemp(join(stateDir, PARTIAL_PREFIX)); // mode 0700
  try {
    const password = randomBytes(32).toString('base64url');
    await writeFile(join(tmp, 'cosign.password'), password + '\n', { mode: 0o600 });
    await runProcess(cosign, ['generate-key-pair', '--output-key-prefix', join(tmp, 'cosign')], {
      cwd: tmp,
      env: toolEnv({ COSIGN_PASSWORD: password }),
      timeoutMs: 60_000,
    });
    // cosign writes the public half 0644; the whole directory stays private.
    for (const { file } of PAIR) await chmod(join(tmp, file), 0o600);
    if ((await pairState(tmp)) !== 'complete') throw new Error(`cosign generate-key-pair did not write a complete key pair in ${tmp}`);
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another serve on this state dir published its pair first: use that one.
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await pairState(dir)) === 'complete') return false;
      throw err;
    }
    return true;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
