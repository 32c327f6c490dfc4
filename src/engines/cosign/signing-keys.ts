import { readFileSync } from 'node:fs';
import { z } from 'zod';

/** One named signing key: a cosign key file or KMS URI, and where its password comes from. */
export interface SigningKey {
  name: string;
  key: string;
  password_env?: string;
  password_file?: string;
  /**
   * The public half as a PEM file (`cosign.pub` beside `cosign.key`): what
   * GET /v1/signing-keys serves and verify checks with, read without cosign, so an
   * `api` process (whose image has no cosign) can list it. Unset: cosign derives it.
   */
  public_key?: string;
}

const keySchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be a key name'),
    key: z.string().regex(/^(\/[^\0\n]+|(awskms|gcpkms|azurekms|hashivault|k8s):\/\/[^\s]+)$/, 'must be an absolute path or a KMS URI'),
    password_env: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional(),
    password_file: z.string().startsWith('/').optional(),
    public_key: z.string().startsWith('/').optional(),
  })
  .strict();
const fileSchema = z.object({ default: z.string().optional(), keys: z.array(keySchema).min(1) }).strict();

export class SigningKeyError extends Error {}

/**
 * What sign and verify answer on a server with no key (an `api` or `worker` started
 * without STEVEDORE_SIGNING_KEYS_FILE): the variable, and the two ways to get a key.
 */
export const NO_SIGNING_KEYS =
  'no signing keys are configured on this server: set STEVEDORE_SIGNING_KEYS_FILE to a keys file ' +
  '(`{"keys": [{"name": "release", "key": "/path/cosign.key", "password_file": "/path/cosign.password"}]}`, ' +
  'a pair made with `cosign generate-key-pair`) on the api and worker processes, or run `stevedore serve`, ' +
  'which generates a default key in its state dir';

/** The server's signing keys (STEVEDORE_SIGNING_KEYS_FILE); none configured is an empty set. */
export class SigningKeys {
  private constructor(
    readonly keys: SigningKey[],
    readonly defaultName: string | undefined,
  ) {}

  static fromFile(path: string | undefined): SigningKeys {
    if (!path) return new SigningKeys([], undefined);
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')));
    if (!parsed.success)
      throw new SigningKeyError(`${path}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    const { keys } = parsed.data;
    const defaultName = parsed.data.default ?? keys[0]!.name;
    if (!keys.some((k) => k.name === defaultName)) throw new SigningKeyError(`${path}: default key ${defaultName} is not listed`);
    return new SigningKeys(keys, defaultName);
  }

  static of(keys: SigningKey[], defaultName?: string): SigningKeys {
    return new SigningKeys(keys, defaultName ?? keys[0]?.name);
  }

  /** The named key, or the default one. */
  get(name?: string): SigningKey {
    const wanted = name ?? this.defaultName;
    const key = this.keys.find((k) => k.name === wanted);
    if (!key) throw new SigningKeyError(wanted ? `no signing key named ${wanted}` : NO_SIGNING_KEYS);
    return key;
  }

  has(name: string): boolean {
    return this.keys.some((k) => k.name === name);
  }

  /** The password, read at the moment of use; it lives only in the child's environment. */
  password(key: SigningKey): string {
    if (key.password_env) return process.env[key.password_env] ?? '';
    if (key.password_file) return readFileSync(key.password_file, 'utf8').replace(/\r?\n$/, '');
    return '';
  }
}
