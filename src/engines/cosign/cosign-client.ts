import { createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ProcessError, toolEnv, type ProcessRunner } from '../process-runner.js';
import { isLoopbackRegistry, parseImageReference } from '../../oci/references.js';
import type { SigningKey, SigningKeys } from './signing-keys.js';

export interface CosignSettings {
  cosign: string;
  /** No transparency log, no Sigstore services (air-gapped). */
  offline: boolean;
  insecureRegistries: string[];
  dockerConfigDir?: string;
}

export interface Verification {
  verified: boolean;
  reason?: string;
  signatures: { key: string; digest: string }[];
}

/**
 * Adapter over cosign. Key passwords reach cosign only as COSIGN_PASSWORD in its own
 * environment; offline mode passes `--tlog-upload=false --use-signing-config=false`
 * (cosign v3.1 deprecates them, but the signing-config route still contacts Sigstore's
 * TUF repository) and verifies with `--insecure-ignore-tlog`.
 */
export class CosignClient {
  private readonly publicKeys = new Map<string, Promise<string>>();

  constructor(
    private readonly runner: ProcessRunner,
    private readonly keys: SigningKeys,
    private readonly settings: CosignSettings,
  ) {}

  /**
   * PEM of a key's public half: its `public_key` file when the keys file names one (read
   * each time, no cosign needed), else derived by `cosign public-key` (cached for the
   * process's life).
   */
  publicKey(key: SigningKey): Promise<string> {
    if (key.public_key) return readPublicKeyFile(key.public_key);
    let pem = this.publicKeys.get(key.name);
    if (!pem) {
      pem = this.runner
        .run(this.settings.cosign, ['public-key', '--key', key.key], { env: this.env(key), timeoutMs: 30_000 })
        .then((r) => r.stdout.trim() + '\n');
      pem.catch(() => this.publicKeys.delete(key.name));
      this.publicKeys.set(key.name, pem);
    }
    return pem;
  }

  /**
   * Signs `pinned`. `recursive` (for an index): cosign walks the index it reads from the
   * registry and signs it and every manifest it lists, each under its own digest's
   * referrers tag (BuildKit's attestation manifests, platform unknown/unknown, included).
   */
  async sign(pinned: string, key: SigningKey, signal?: AbortSignal, options: { recursive?: boolean } = {}): Promise<void> {
    const args = [
      'sign',
      '--key',
      key.key,
      '--yes',
      ...(options.recursive ? ['--recursive'] : []),
      ...this.offlineSignArgs(),
      ...this.httpArgs(pinned),
      '--',
      pinned,
    ];
    await this.runner.run(this.settings.cosign, args, { env: this.env(key), signal, timeoutMs: 300_000 });
  }

  /** Attaches an in-toto attestation (`cyclonedx`, `vuln`) made from a predicate file. */
  async attest(pinned: string, key: SigningKey, type: 'cyclonedx' | 'vuln', predicateFile: string, signal?: AbortSignal): Promise<void> {
    const args = [
      'attest',
      '--key',
      key.key,
      '--yes',
      '--type',
      type,
      '--predicate',
      predicateFile,
      ...this.offlineSignArgs(),
      ...this.httpArgs(pinned),
      '--',
      pinned,
    ];
    await this.runner.run(this.settings.cosign, args, { env: this.env(key), signal, timeoutMs: 300_000 });
  }

  /** Answers whether `pinned` carries a valid signature by `key`; "no" is an answer, not an error. */
  async verify(pinned: string, key: SigningKey, signal?: AbortSignal): Promise<Verification> {
    const pub = await this.publicKeyFile(key);
    try {
      const { stdout } = await this.runner.run(
        this.settings.cosign,
        ['verify', '--key', pub, '--output', 'json', ...this.offlineVerifyArgs(), ...this.httpArgs(pinned), '--', pinned],
        { env: this.env(), signal, timeoutMs: 120_000 },
      );
      const payloads = JSON.parse(stdout.trim() || '[]') as { critical?: { image?: { 'docker-manifest-digest'?: string } } }[];
      return {
        verified: true,
        signatures: payloads.map((p) => ({ key: key.name, digest: p.critical?.image?.['docker-manifest-digest'] ?? '' })),
      };
    } catch (err) {
      if (err instanceof ProcessError && err.kind === 'exit') return { verified: false, reason: reason(err.stderrTail), signatures: [] };
      throw err;
    } finally {
      await removeKeyFile(pub);
    }
  }

  async verifyAttestation(
    pinned: string,
    key: SigningKey,
    type: 'cyclonedx' | 'vuln',
    signal?: AbortSignal,
  ): Promise<{ type: string; verified: boolean; reason?: string }> {
    const pub = await this.publicKeyFile(key);
    try {
      await this.runner.run(
        this.settings.cosign,
        ['verify-attestation', '--key', pub, '--type', type, ...this.offlineVerifyArgs(), ...this.httpArgs(pinned), '--', pinned],
        { env: this.env(), signal, timeoutMs: 120_000 },
      );
      return { type, verified: true };
    } catch (err) {
      if (err instanceof ProcessError && err.kind === 'exit') return { type, verified: false, reason: reason(err.stderrTail) };
      throw err;
    } finally {
      await removeKeyFile(pub);
    }
  }

  /** The public key in a file of a temp dir of its own, for cosign's --key; removeKeyFile after. */
  private async publicKeyFile(key: SigningKey): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'stevedore-pub-'));
    const file = join(dir, `${key.name}.pub`);
    try {
      await writeFile(file, await this.publicKey(key));
    } catch (err) {
      await removeKeyFile(file);
      throw err;
    }
    return file;
  }

  private offlineSignArgs(): string[] {
    return this.settings.offline ? ['--tlog-upload=false', '--use-signing-config=false'] : [];
  }

  private offlineVerifyArgs(): string[] {
    return this.settings.offline ? ['--insecure-ignore-tlog=true'] : [];
  }

  private httpArgs(pinned: string): string[] {
    const registry = parseImageReference(pinned).registry;
    return isLoopbackRegistry(registry) || this.settings.insecureRegistries.includes(registry) ? ['--allow-http-registry=true'] : [];
  }

  private env(key?: SigningKey): NodeJS.ProcessEnv {
    const env = toolEnv();
    if (key) env.COSIGN_PASSWORD = this.keys.password(key);
    if (this.settings.dockerConfigDir) env.DOCKER_CONFIG = this.settings.dockerConfigDir;
    return env;
  }
}

/** cosign's last meaningful error line, e.g. "no signatures found" or "no matching signatures". */
function reason(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.replace(/^Error: /, '').trim())
    .filter((l) => l && !l.startsWith('WARNING'));
  return (
    lines.find((l) => /no (matching )?signatures|no matching attestations|not found|invalid/i.test(l)) ??
    lines.pop() ??
    'verification failed'
  );
}

/** A `public_key` file: must hold one PEM public key (a private key or garbage there is refused, not served). */
async function readPublicKeyFile(path: string): Promise<string> {
  const text = (await readFile(path, 'utf8')).trim();
  let valid = /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----$/.test(text);
  if (valid)
    try {
      createPublicKey(text);
    } catch {
      valid = false;
    }
  if (!valid) throw new Error(`${path} does not hold a PEM public key (-----BEGIN PUBLIC KEY-----)`);
  return `${text}\n`;
}

/** A verification's key file and its dir: one per call, so never left in /tmp (a verify runs per image, per key). */
async function removeKeyFile(file: string): Promise<void> {
  await rm(dirname(file), { recursive: true, force: true });
}
