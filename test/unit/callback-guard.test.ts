import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { assertCallbackAllowed, callbackProblem, CallbackRefused, guardedLookup } from '../../src/webhooks/callback-guard.js';
import { isAllowedHost, isBlockedAddress } from '../../src/net/address-policy.js';
import { checkSubmittable, type SubmitChecks } from '../../src/admission/submit-checks.js';
import { AppError } from '../../src/errors/app-error.js';
import { signatureHeaders } from '../../src/webhooks/webhook-sender.js';
import { Webhook } from 'standardwebhooks';

describe('webhook SSRF guard', () => {
  it('blocks loopback, private, link-local, CGNAT, multicast, reserved and unspecified addresses, in every spelling', () => {
    for (const ip of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '239.255.255.250',
      '255.255.255.255',
      '::',
      '::1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::ffff:10.0.0.1',
      '::ffff:a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      'not-an-ip',
    ]) {
      assert.equal(isBlockedAddress(ip), true, ip);
    }
    for (const ip of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '192.169.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])
      assert.equal(isBlockedAddress(ip), false, ip);
  });

  it('judges IPv6 forms that carry an IPv4 address by that address (translated, NAT64, 6to4), and blocks the tunnelling ranges', () => {
    const blocked = [
      '::7f00:1',
      '::a00:1',
      '::127.0.0.1', // IPv4-compatible (deprecated): ::/96
      '::ffff:0:7f00:1',
      '::ffff:0:127.0.0.1',
      '::ffff:0:a9fe:a9fe', // IPv4-translated
      '0:0:0:0:0:ffff:127.0.0.1',
      '0000:0000:0000:0000:0000:ffff:7f00:0001',
      '::FFFF:7F00:1', // mapped, long and upper-case spellings
      '64:ff9b::a9fe:a9fe',
      '64:ff9b::169.254.169.254',
      '64:ff9b:1::808:808', // NAT64, local-use NAT64
      '2002:7f00:1::',
      '2002:a9fe:a9fe::1', // 6to4 of loopback / metadata
      '2001:0:4136:e378::1', // Teredo
      'fe80::1%eth0',
      'fec0::1',
      '3fff::1',
      '5f00::1',
    ];
    for (const ip of blocked) assert.equal(isBlockedAddress(ip), true, ip);
    for (const ip of ['::ffff:0:808:808', '64:ff9b::808:808', '2002:808:808::1', '2a00:1450:4001:81c::200e'])
      assert.equal(isBlockedAddress(ip), false, ip);
  });

  it('refuses the URL spellings of internal addresses (decimal, hex, short IPv4; bracketed IPv6)', async () => {
    for (const url of [
      'http://2130706433/',
      'http://0x7f.1/',
      'http://127.1/',
      'http://[::127.0.0.1]/',
      'http://[::ffff:0:127.0.0.1]/',
      'http://[64:ff9b::10.0.0.1]/',
      'http://[2002:a9fe:a9fe::]/',
      'http://0/',
    ]) {
      assert.ok(await callbackProblem(url, []), url);
    }
  });

  it('matches the allow list however a host is spelled', () => {
    assert.equal(isAllowedHost('::1', ['[::1]']), true);
    assert.equal(isAllowedHost('0:0:0:0:0:0:0:1', ['::1']), true);
    assert.equal(isAllowedHost('Hooks.Internal.', ['hooks.internal']), true);
    assert.equal(isAllowedHost('127.0.0.1', ['127.1']), true);
    assert.equal(isAllowedHost('hooks.internal.evil.com', ['hooks.internal']), false);
    assert.equal(isAllowedHost('127.0.0.2', ['127.0.0.1']), false);
  });

  it('assertCallbackAllowed throws CallbackRefused with the problem, and passes allowed ones', async () => {
    const refused = await assertCallbackAllowed('http://10.0.0.1/hook', []).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(refused instanceof CallbackRefused);
    assert.match(refused.message, /^10\.0\.0\.1 is a loopback, private/);
    await assertCallbackAllowed('http://10.0.0.1/hook', ['10.0.0.1']);
    await assertCallbackAllowed('https://8.8.8.8/hook', []);
  });

  it('admission answers a refused callback_url as VALIDATION_FAILED on the field', async () => {
    const checks = {
      config: {
        registryMirror: '127.0.0.1:5000',
        registryListen: '127.0.0.1:5999',
        insecureRegistries: [],
        registryAllowedHosts: [],
        webhooks: { allowedHosts: [] },
      },
      tenant: 'default',
      principal: { tenant: 'default', root: true },
    } as unknown as SubmitChecks;
    const err = await checkSubmittable({ action: 'inspect', image: 'debian', callback_url: 'http://10.0.0.1/hook' }, checks).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    assert.equal(err.kind, 'invalid');
    assert.equal(err.code, 'VALIDATION_FAILED');
    assert.match(err.message, /^invalid body: callback_url: 10\.0\.0\.1 is a loopback, private/);
    assert.deepEqual(err.details, { fields: [{ path: 'callback_url', message: err.message.replace('invalid body: callback_url: ', '') }] });
  });

  it(
    'refuses other schemes, credentials, blocked literals and names that resolve to blocked addresses; ' + 'the allow list overrides',
    async () => {
      assert.match((await callbackProblem('ftp://example.com/x', []))!, /http\(s\)/);
      assert.match((await callbackProblem('file:///etc/passwd', []))!, /http\(s\)/);
      assert.match((await callbackProblem('http://user:pw@8.8.8.8/x', []))!, /credentials/);
      assert.match((await callbackProblem('http://169.254.169.254/latest/meta-data', []))!, /169\.254\.169\.254 is a loopback, private/);
      assert.match((await callbackProblem('http://[::ffff:127.0.0.1]:8080/', []))!, /not|loopback/);
      assert.match((await callbackProblem('http://localhost:9/hook', []))!, /localhost resolves to/);
      assert.equal(await callbackProblem('http://8.8.8.8/hook', []), undefined);
      assert.equal(await callbackProblem('http://127.0.0.1:9/hook', ['127.0.0.1']), undefined);
      assert.equal(await callbackProblem('http://localhost:9/hook', ['localhost']), undefined);
    },
  );

  it('refuses at connect time after resolution, unless the host is allowed', async () => {
    const lookup = (allowed: string[]) =>
      new Promise<{ err: (Error & { code?: string }) | null; address: unknown }>((resolve) =>
        guardedLookup(allowed)('localhost', {}, (err, address) => resolve({ err, address })),
      );
    const refused = await lookup([]);
    assert.equal(refused.err?.code, 'ECALLBACKREFUSED');
    assert.match(refused.err.message, /SSRF guard/);
    const allowed = await lookup(['localhost']);
    assert.equal(allowed.err, null);
    assert.match(String(allowed.address), /^(127\.0\.0\.1|::1)$/);
  });

  it('signs per Standard Webhooks, once per secret during a rotation', () => {
    const [a, b] = ['whsec_' + Buffer.alloc(32, 1).toString('base64'), 'whsec_' + Buffer.alloc(32, 2).toString('base64')];
    const body = JSON.stringify({ type: 'job.succeeded', data: {} });
    const headers = signatureHeaders({ id: 'msg_1', body, secrets: [a, b] });
    assert.equal(headers['webhook-signature']!.split(' ').length, 2);
    assert.match(headers['webhook-signature']!, /^v1,[A-Za-z0-9+/=]+ v1,[A-Za-z0-9+/=]+$/);
    for (const secret of [a, b]) assert.deepEqual(new Webhook(secret).verify(body, headers), { type: 'job.succeeded', data: {} });
    assert.throws(() => new Webhook('whsec_' + Buffer.alloc(32, 3).toString('base64')).verify(body, headers));
  });
});
