import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { ensureDefaultSigningKey, pairState, signingDir } from '../../src/cli/signing-key-init.js';
import { SigningKeys } from '../../src/engines/cosign/signing-keys.js';
import { CosignClient } from '../../src/engines/cosign/cosign-client.js';
import { ProcessError } from '../../src/engines/process-runner.js';

/**
 * A stand-in for `cosign generate-key-pair --output-key-prefix P`: writes P.key and P.pub
 * as cosign does (the public half 0644) and records the COSIGN_PASSWORD it was given, so
 * the test sees the password reach it only through the environment. A `fail` file next
 * to it makes it die after the private key, as a crash mid-generation would.
 */
function fakeCosign(dir: string): { bin: string; calls: () => string[]; failing: (on: boolean) => void } {
  const log = join(dir, 'calls');
  const bin = join(dir, 'cosign');
  writeFileSync(
    bin,
    `#!/bin/sh
[ "$1" = generate-key-pair ] && [ "$2" = --output-key-prefix ] || exit 9
echo "$COSIGN_PASSWORD $*" >> ${log}
printf -- '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\\nx\\n' > "$3.key"
[ -e ${join(dir, 'fail')} ] && exit 1
printf -- '-----BEGIN PUBLIC KEY-----\\n%s\\n' "$$" > "$3.pub"
chmod 644 "$3.pub"
`,
  );
  chmodSync(bin, 0o755);
  return {
    bin,
    calls: () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []),
    failing: (on) => (on ? writeFileSync(join(dir, 'fail'), '') : rmSync(join(dir, 'fail'))),
  };
}

describe('the default signing key serve makes', () => {
  const root = mkdtempSync(join(tmpdir(), 'stv-sigkey-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('makes a private pair once, with a random password passed only in the environment, and reuses it', async () => {
    const state = join(root, 'a');
    const cosign = fakeCosign(mkdtempSync(join(root, 'bin-')));
    const first = await ensureDefaultSigningKey(state, cosign.bin);
    assert.equal(first.created, true);
    const dir = signingDir(state);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of ['cosign.key', 'cosign.pub', 'cosign.password', 'keys.json'])
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is private`);
    const password = readFileSync(join(dir, 'cosign.password'), 'utf8').trim();
    assert.match(password, /^[A-Za-z0-9_-]{43}$/);
    const [call] = cosign.calls();
    assert.ok(call!.startsWith(`${password} generate-key-pair --output-key-prefix `), 'the password came through COSIGN_PASSWORD');
    assert.ok(!call!.slice(password.length).includes(password), 'and is on no command line');
    // The keys file is one SigningKeys reads: the pair is the default key, its password read from its file.
    const keys = SigningKeys.fromFile(first.keysFile);
    assert.equal(keys.defaultName, 'default');
    assert.equal(keys.get().key, join(dir, 'cosign.key'));
    assert.equal(keys.password(keys.get()), password);
    assert.equal(keys.get().public_key, join(dir, 'cosign.pub'), 'an api process without cosign serves this file');
    assert.ok(!readFileSync(first.keysFile, 'utf8').includes(password), 'the keys file holds paths, not the password');

    const pub = readFileSync(first.publicKeyFile, 'utf8');
    const second = await ensureDefaultSigningKey(state, cosign.bin);
    assert.equal(second.created, false);
    assert.equal(cosign.calls().length, 1, 'never regenerated');
    assert.equal(readFileSync(second.publicKeyFile, 'utf8'), pub);
  });

  it('leaves nothing behind when generation dies half-way, and makes a whole pair on the next start', async () => {
    const state = join(root, 'b');
    const cosign = fakeCosign(mkdtempSync(join(root, 'bin-')));
    cosign.failing(true);
    await assert.rejects(ensureDefaultSigningKey(state, cosign.bin));
    cosign.failing(false);
    assert.equal(await pairState(signingDir(state)), 'absent', 'no half-written signing/');
    assert.deepEqual(readdirSync(state), [], 'the partial directory was removed');
    const made = await ensureDefaultSigningKey(state, cosign.bin);
    assert.equal(made.created, true);
    assert.equal(await pairState(signingDir(state)), 'complete');
  });

  it('removes the partial directory a killed start left, and sets an incomplete pair aside instead of using it', async () => {
    const state = join(root, 'c');
    const cosign = fakeCosign(mkdtempSync(join(root, 'bin-')));
    mkdirSync(join(state, 'signing.partial-XyZ123'), { recursive: true });
    writeFileSync(join(state, 'signing.partial-XyZ123', 'cosign.key'), '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n');
    mkdirSync(signingDir(state));
    writeFileSync(join(signingDir(state), 'cosign.key'), '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nx\n');
    writeFileSync(join(signingDir(state), 'cosign.pub'), ''); // truncated
    writeFileSync(join(signingDir(state), 'cosign.password'), 'p\n');
    assert.equal(await pairState(signingDir(state)), 'incomplete');
    const made = await ensureDefaultSigningKey(state, cosign.bin);
    assert.equal(made.created, true);
    assert.ok(made.setAside && existsSync(join(made.setAside, 'cosign.key')), 'the old material was moved aside, not overwritten');
    assert.equal(await pairState(signingDir(state)), 'complete');
    assert.ok(!readdirSync(state).some((n) => n.startsWith('signing.partial-')));
  });
});

describe('a key whose keys file names its public_key', () => {
  const root = mkdtempSync(join(tmpdir(), 'stv-pubfile-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const runner = {
    calls: 0,
    run() {
      this.calls++;
      return Promise.reject(new Error('spawn cosign ENOENT'));
    },
  };
  const client = new CosignClient(runner, SigningKeys.of([]), {
    cosign: '/nonexistent/cosign',
    offline: true,
    insecureRegistries: [],
  });
  const keyWith = (file: string) => ({ name: 'release', key: join(root, 'release.key'), public_key: file });

  it('is read from that file, without cosign, and re-read when the file changes', async () => {
    const file = join(root, 'release.pub');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(file, pem);
    assert.equal(await client.publicKey(keyWith(file)), pem.trim() + '\n');
    const next = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    writeFileSync(file, next);
    assert.equal(await client.publicKey(keyWith(file)), next.trim() + '\n');
    assert.equal(runner.calls, 0);
  });

  it('refuses a file that is not one PEM public key (a private key is never served)', async () => {
    const priv = join(root, 'private.pem');
    writeFileSync(priv, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    const garbled = join(root, 'garbled.pub');
    writeFileSync(garbled, '-----BEGIN PUBLIC KEY-----\nnot base64 at all\n-----END PUBLIC KEY-----\n');
    for (const file of [priv, garbled]) await assert.rejects(client.publicKey(keyWith(file)), /does not hold a PEM public key/, file);
    await assert.rejects(client.publicKey(keyWith(join(root, 'missing.pub'))), /ENOENT/);
  });
});

describe('a verification against a key', () => {
  const root = mkdtempSync(join(tmpdir(), 'stv-verifykey-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
  writeFileSync(join(root, 'release.pub'), pem);
  const key = { name: 'release', key: join(root, 'release.key'), public_key: join(root, 'release.pub') };

  it('removes the key file it hands cosign, whether cosign says yes, no or cannot run', async () => {
    const seen: string[] = [];
    const answers = [
      () => Promise.resolve({ stdout: '[]', stderr: '', durationMs: 1 }),
      () => Promise.reject(new ProcessError('exit', 'cosign', 1, null, 'Error: no matching signatures', 'exit 1')),
      () => Promise.reject(new Error('spawn cosign ENOENT')),
    ];
    for (const answer of answers) {
      const runner = {
        run(_command: string, args: readonly string[]) {
          const file = args[args.indexOf('--key') + 1]!;
          assert.equal(readFileSync(file, 'utf8'), pem, 'cosign gets the public key');
          seen.push(file);
          return answer();
        },
      };
      const client = new CosignClient(runner, SigningKeys.of([]), { cosign: '/nonexistent/cosign', offline: true, insecureRegistries: [] });
      await client.verify('127.0.0.1:5000/app@sha256:' + 'a'.repeat(64), key).catch(() => undefined);
      await client.verifyAttestation('127.0.0.1:5000/app@sha256:' + 'a'.repeat(64), key, 'vuln').catch(() => undefined);
    }
    assert.equal(seen.length, 6);
    for (const file of seen) assert.ok(!existsSync(dirname(file)), `${dirname(file)} is left behind`);
  });
});
