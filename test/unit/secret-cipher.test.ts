import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { SecretCipher } from '../../src/secrets/secret-cipher.js';

const AD = 'secret:team-a:npm_token';

/** Flips one bit of one base64url part of a sealed value, keeping it valid base64url. */
function flip(sealed: string, part: 1 | 2 | 3): string {
  const parts = sealed.split('.');
  const bytes = Buffer.from(parts[part]!, 'base64url');
  bytes[0] = bytes[0]! ^ 0x01;
  parts[part] = bytes.toString('base64url');
  return parts.join('.');
}

describe('SecretCipher (AES-256-GCM)', () => {
  const cipher = new SecretCipher(randomBytes(32));

  it('round-trips, with a fresh IV each time and no plaintext in the sealed form', () => {
    const plaintext = `tok-${randomBytes(16).toString('hex')} ünïcødé`;
    const a = cipher.encrypt(plaintext, AD);
    const b = cipher.encrypt(plaintext, AD);
    assert.match(a, /^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.notEqual(a, b, 'same plaintext, different ciphertext');
    assert.ok(!a.includes(plaintext) && !a.includes(Buffer.from(plaintext).toString('base64url')));
    assert.equal(cipher.decrypt(a, AD), plaintext);
    assert.equal(cipher.decrypt(b, AD), plaintext);
    assert.equal(cipher.decrypt(cipher.encrypt('', AD), AD), '');
  });

  it('refuses a tampered IV, tag or ciphertext', () => {
    const sealed = cipher.encrypt('the value', AD);
    for (const part of [1, 2, 3] as const) assert.throws(() => cipher.decrypt(flip(sealed, part), AD), `part ${part}`);
    assert.throws(() => cipher.decrypt(sealed.split('.').slice(0, 3).join('.'), AD), /not a sealed secret/);
    assert.throws(() => cipher.decrypt(`v2${sealed.slice(2)}`, AD), /not a sealed secret/);
  });

  it('refuses other associated data (another tenant or name)', () => {
    const sealed = cipher.encrypt('the value', AD);
    assert.throws(() => cipher.decrypt(sealed, 'secret:team-b:npm_token'));
    assert.throws(() => cipher.decrypt(sealed, 'secret:team-a:other'));
  });

  it('refuses another key, and a key that is not 32 bytes', () => {
    const sealed = cipher.encrypt('the value', AD);
    assert.throws(() => new SecretCipher(randomBytes(32)).decrypt(sealed, AD));
    assert.throws(() => new SecretCipher(randomBytes(16)), /32 bytes/);
  });
});
