import assert from 'node:assert/strict';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../../src/engines/process-runner.js';
import { TOOLS } from '../support/env.js';
import { api, roleEnv, spawnRole, waitUntil, type GroupProcess } from '../support/fault-helpers.js';
import { RedisServer } from '../support/processes.js';
import { freePort } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

const PASSWORD = `pw-pub-${Date.now()}`;

/**
 * A split deployment's `api` process has no cosign (its image ships none): it must list
 * the signing keys' public halves from the files the keys file names, the same PEM
 * cosign derives from the private key.
 */
describe('GET /v1/signing-keys on an api process without cosign', () => {
  const dir = tempDir('stv-pubkeys-');
  // No cosign anywhere the api looks: an empty tools dir and a PATH with node only.
  const emptyCache = tempDir('stv-no-tools-');
  const path = [dirname(process.execPath), '/usr/bin', '/bin'].join(':');
  let redis: RedisServer;
  let derived: string;
  const running: GroupProcess[] = [];

  before(async () => {
    assert.equal(
      ['/usr/bin/cosign', '/bin/cosign', join(dirname(process.execPath), 'cosign')].some((p) => existsSync(p)),
      false,
      'no cosign on the api PATH',
    );
    redis = new RedisServer(await freePort());
    await redis.start();
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: PASSWORD };
    await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(dir, 'release')], { env, cwd: dir });
    derived = (await runProcess(TOOLS.cosign, ['public-key', '--key', join(dir, 'release.key')], { env })).stdout.trim() + '\n';
    writeFileSync(join(dir, 'release.password'), PASSWORD);
  });
  after(async () => {
    for (const p of running) await p.kill();
    await redis?.kill();
    rmSync(redis?.dir ?? '', { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
    rmSync(emptyCache, { recursive: true, force: true });
  });

  /** `stevedore api` with this keys file, once it answers /healthz. */
  async function apiRole(keys: object): Promise<string> {
    const keysFile = join(dir, `keys-${running.length}.json`);
    writeFileSync(keysFile, JSON.stringify(keys));
    const port = await freePort();
    const role = spawnRole(
      `api-${running.length}`,
      'api',
      roleEnv({
        PATH: path,
        STEVEDORE_CACHE_DIR: emptyCache,
        STEVEDORE_STATE_DIR: tempDir('stv-api-state-'),
        REDIS_URL: redis.url,
        STEVEDORE_HTTP_PORT: String(port),
        STEVEDORE_GRPC_PORT: String(await freePort()),
        STEVEDORE_SIGNING_KEYS_FILE: keysFile,
      }),
    );
    running.push(role);
    const base = `http://127.0.0.1:${port}`;
    await waitUntil(
      'the api to answer',
      async () => ((await api(base, 'GET', '/healthz')).status === 200 ? true : undefined),
      60_000,
      async () => role.output().slice(-2000),
    );
    return base;
  }

  const release = { name: 'release', key: join(dir, 'release.key'), password_file: join(dir, 'release.password') };

  it('without a public_key file it cannot answer (503): cosign really is absent', async () => {
    const base = await apiRole({ keys: [release] });
    const r = await api(base, 'GET', '/v1/signing-keys');
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'SIGNING_KEY_UNAVAILABLE');
  });

  it('with public_key it serves the PEM cosign derives, and refuses a file that is not a public key', async () => {
    const base = await apiRole({ keys: [{ ...release, public_key: join(dir, 'release.pub') }] });
    const r = await api(base, 'GET', '/v1/signing-keys');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.items, [{ name: 'release', public_key: derived, default: true }]);

    // The private key named as the public one by mistake: never served.
    const wrong = await apiRole({ keys: [{ ...release, public_key: join(dir, 'release.key') }] });
    const refused = await api(wrong, 'GET', '/v1/signing-keys');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.match(refused.body.error.message, /does not hold a PEM public key/);
    assert.doesNotMatch(JSON.stringify(refused.body), /PRIVATE KEY/);
  });
});
