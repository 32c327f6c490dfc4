import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { PROJECT_DIR, CACHE_DIR, OFFLINE_TRIVY_DB, TOOLS } from '../support/env.js';
import { freePort } from '../support/stack.js';
import { dumpRedis } from '../support/redis-dump.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { dbTarGz } from '../support/trivy-db-artifact.js';
import { tempDir } from '../support/temp-dir.js';

/**
 * A free port below the kernel's ephemeral range: the restart binds the same ports again,
 * and a port from that range may meanwhile be the source port of some client connection
 * on loopback (this test's own polling, say), which makes the bind fail with EADDRINUSE.
 */
async function freeListenPort(): Promise<number> {
  const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32768;
  for (let i = 0; i < 200; i++) {
    const port = 10_000 + Math.floor(Math.random() * (low - 10_000));
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  return freePort();
}

// Free ports of their own, chosen once for the file (the restart reuses them): a stevedore
// someone runs by hand on the defaults, or another test run on this machine, is left alone.
const HTTP_PORT = await freeListenPort();
const GRPC_PORT = await freeListenPort();
const REGISTRY = `127.0.0.1:${await freeListenPort()}`;

/**
 * A Trivy cache with the test DB, so a build can scan. No STEVEDORE_SIGNING_KEYS_FILE:
 * serve signs with the key pair it generates in its state dir (issue 17).
 */
async function extras(): Promise<Record<string, string>> {
  // The default serve: no DB, key or smoke variables. Only the DB's source is pointed at
  // a loopback port (network rule); the DB is loaded through PUT /v1/system/trivy-db below.
  return { ...OFFLINE_TRIVY_DB };
}
const EXTRAS = await extras();

/** Everything serve prints, for the check that no password reaches it. */
const printed: Buffer[] = [];

function serve(stateDir: string): ChildProcess {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    STEVEDORE_STATE_DIR: stateDir,
    STEVEDORE_CACHE_DIR: CACHE_DIR,
    STEVEDORE_HTTP_PORT: String(HTTP_PORT),
    STEVEDORE_GRPC_PORT: String(GRPC_PORT),
    STEVEDORE_REGISTRY_LISTEN: REGISTRY,
    STEVEDORE_LOG_LEVEL: 'info',
    ...EXTRAS,
  };
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d: Buffer) => printed.push(d));
  child.stderr.on('data', (d: Buffer) => {
    printed.push(d);
    process.stderr.write(d);
  });
  return child;
}

/** The public key of serve's generated default signing key, as first listed (the restart must list the same). */
let signingPublicKey = '';

async function defaultKey(token: string): Promise<{ name: string; public_key: string; default: boolean }> {
  const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/signing-keys`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200);
  const { items } = (await res.json()) as { items: { name: string; public_key: string; default: boolean }[] };
  assert.equal(items.length, 1, JSON.stringify(items));
  assert.equal(items[0]!.name, 'default');
  assert.equal(items[0]!.default, true);
  return items[0]!;
}

/** The generated key's password and private key are in nothing serve printed, nor in its daemons' logs. */
function assertNoKeyPasswordPrinted(stateDir: string): void {
  const password = readFileSync(join(stateDir, 'signing', 'cosign.password'), 'utf8').trim();
  assert.ok(password.length >= 32);
  const privateKey = readFileSync(join(stateDir, 'signing', 'cosign.key'), 'utf8').split('\n')[1]!;
  const out = Buffer.concat(printed).toString('utf8');
  assert.match(out, /default signing key/, 'serve said which key it signs with');
  for (const secret of [password, privateKey]) {
    assert.ok(!out.includes(secret), 'serve printed the signing key or its password');
    for (const log of ['redis.log', 'registry.log', 'buildkitd.log'])
      assert.ok(!readFileSync(join(stateDir, 'run', log), 'utf8').includes(secret), `${log} holds the signing key or its password`);
  }
}

/** The generated credentials serve keeps in its state dir. */
const secretOf = (stateDir: string, name: 'redis-password' | 'registry-password') => readFileSync(join(stateDir, name), 'utf8').trim();
const registryCredentials = (stateDir: string) => ({ username: 'stevedore', password: secretOf(stateDir, 'registry-password') });
const redisOf = (stateDir: string) => {
  const { redis_url } = JSON.parse(readFileSync(join(stateDir, 'serve.json'), 'utf8'));
  return new Redis(redis_url.replace('***', encodeURIComponent(secretOf(stateDir, 'redis-password'))));
};

async function waitJob(token: string, id: string, timeoutMs = 300_000): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await (
      await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as any;
    if (['succeeded', 'failed', 'cancelled', 'timed_out'].includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

async function waitReady(child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
    const status = await fetch(`http://127.0.0.1:${HTTP_PORT}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('serve not ready in time');
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) =>
    child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code)),
  );

function pidsOf(stateDir: string): number[] {
  // Daemons of this state dir only: their command lines name it.
  const out: number[] = [];
  for (const name of ['redis', 'buildkitd', 'registry']) {
    const file = join(stateDir, 'run', `${name}.pid`);
    if (existsSync(file)) out.push(Number(readFileSync(file, 'utf8').split('\n')[0]));
  }
  return out;
}
/** Running: a zombie (killed, not yet reaped by init) holds no port and no file. */
const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

describe('stevedore serve (embedded Redis, buildkitd and registry)', () => {
  const stateDir = tempDir('stv-serve-');
  let child: ChildProcess | undefined;
  after(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await exited(child);
    }
  });

  it('starts everything it needs, seeds the base image, writes serve.json and a private token', async () => {
    child = serve(stateDir);
    await waitReady(child);
    const endpoints = JSON.parse(readFileSync(join(stateDir, 'serve.json'), 'utf8'));
    assert.equal(endpoints.registry, REGISTRY);
    // The URL carries the generated password, which serve.json leaves out.
    assert.match(endpoints.redis_url, /^redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/0$/);
    assert.equal(endpoints.redis_password_file, join(stateDir, 'redis-password'));
    assert.equal(endpoints.registry_auth_file, join(stateDir, 'docker', 'config.json'));
    assert.equal(endpoints.buildkit_host, `unix://${join(stateDir, 'buildkit', 'buildkitd.sock')}`);
    assert.deepEqual(endpoints.embedded, { redis: true, buildkit: true, registry: true });
    assert.ok(
      await new RegistryClient(REGISTRY, { credentials: registryCredentials(stateDir) }).manifestDigest('library/debian', 'bookworm-slim'),
      'base image seeded',
    );
    const tokenFile = join(stateDir, 'admin-token');
    for (const file of [
      tokenFile,
      join(stateDir, 'redis-password'),
      join(stateDir, 'registry-password'),
      join(stateDir, 'docker', 'config.json'),
      join(stateDir, 'redis', 'redis.conf'),
      join(stateDir, 'registry', 'htpasswd'),
      join(stateDir, 'signing', 'cosign.key'),
      join(stateDir, 'signing', 'cosign.pub'),
      join(stateDir, 'signing', 'cosign.password'),
    ]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, `${file} is private`);
    }
    const token = readFileSync(tokenFile, 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/system`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
  });

  it('gives its Redis a password that is in no command line, serve.json or log line', async () => {
    const password = secretOf(stateDir, 'redis-password');
    assert.match(password, /^[A-Za-z0-9_-]{32}$/);
    const { redis_url } = JSON.parse(readFileSync(join(stateDir, 'serve.json'), 'utf8'));
    // A client without the password gets nothing but NOAUTH.
    const port = Number(new URL(redis_url).port);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.once('data', (d) => {
        resolve(d.toString());
        socket.destroy();
      });
      socket.once('error', reject);
    });
    assert.match(answer, /^-NOAUTH/);
    const redis = redisOf(stateDir);
    assert.equal(await redis.ping(), 'PONG');
    await redis.quit();
    for (const name of ['redis', 'registry', 'buildkitd']) {
      const pid = Number(readFileSync(join(stateDir, 'run', `${name}.pid`), 'utf8').split('\n')[0]);
      assert.ok(!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(password), `${name}'s command line`);
    }
    assert.ok(!readFileSync(`/proc/${child!.pid}/cmdline`, 'utf8').includes(password));
    const registryPassword = secretOf(stateDir, 'registry-password');
    const out = Buffer.concat(printed).toString('utf8');
    assert.match(out, /embedded redis on redis:\/\/:\*\*\*@127\.0\.0\.1/);
    for (const secret of [password, registryPassword, Buffer.from(`stevedore:${registryPassword}`).toString('base64')]) {
      assert.ok(!out.includes(secret), 'serve printed a password');
      assert.ok(!readFileSync(join(stateDir, 'serve.json'), 'utf8').includes(secret), 'serve.json holds a password');
      for (const log of ['redis.log', 'registry.log', 'buildkitd.log'])
        assert.ok(!readFileSync(join(stateDir, 'run', log), 'utf8').includes(secret), `${log} holds a password`);
    }
  });

  it('refuses anonymous reads and writes on its registry', async () => {
    const base = `http://${REGISTRY}`;
    const upload = await fetch(`${base}/v2/anonymous/app/blobs/uploads/`, { method: 'POST' });
    assert.equal(upload.status, 401, 'anonymous blob upload');
    assert.match(upload.headers.get('www-authenticate') ?? '', /^Basic realm="stevedore"/);
    const put = await fetch(`${base}/v2/anonymous/app/manifests/1`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: '{}',
    });
    assert.equal(put.status, 401, 'anonymous manifest put');
    assert.equal((await fetch(`${base}/v2/_catalog`)).status, 401, 'anonymous catalog');
    assert.equal((await fetch(`${base}/v2/library/debian/manifests/bookworm-slim`)).status, 401, 'anonymous pull');
    const wrong = { authorization: `Basic ${Buffer.from('stevedore:not-the-password').toString('base64')}` };
    assert.equal((await fetch(`${base}/v2/_catalog`, { headers: wrong })).status, 401, 'a wrong password');
    const right = { authorization: `Basic ${Buffer.from(`stevedore:${secretOf(stateDir, 'registry-password')}`).toString('base64')}` };
    const catalog = await fetch(`${base}/v2/_catalog`, { headers: right });
    assert.equal(catalog.status, 200);
    assert.ok(((await catalog.json()) as { repositories: string[] }).repositories.includes('library/debian'));
    await assert.rejects(new RegistryClient(REGISTRY).manifestDigest('library/debian', 'bookworm-slim'), /needs credentials/);
  });

  it(
    'builds FROM debian through its authenticated mirror, scans, signs, pushes and inspects with the generated credentials',
    { timeout: 600_000 },
    async () => {
      const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
      const submit = async (body: object) => {
        const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/jobs`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const json = (await res.json()) as { id: string };
        assert.equal(res.status, 202, JSON.stringify(json));
        return waitJob(token, json.id);
      };
      // FROM debian:bookworm-slim is pulled through buildkitd's docker.io mirror (the
      // embedded registry, with the credentials buildctl hands over in its session);
      // the image is pushed there, scanned by Trivy and signed and attested by cosign
      // (both with DOCKER_CONFIG), and copied with the Node registry client.
      // serve starts without a Trivy DB: an operator loads one through the admin endpoint.
      const load = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/system/trivy-db`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/gzip' },
        body: new Uint8Array(await dbTarGz(await makeTrivyCache())),
      });
      assert.equal(load.status, 200, await load.clone().text());
      assert.match(((await load.json()) as { updated_at: string }).updated_at, /^\d{4}-/);
      const tag = `${REGISTRY}/serve/app:1`;
      const release = `${REGISTRY}/release/app:1`;
      const build = await submit({
        action: 'build',
        dockerfile_inline: 'FROM debian:bookworm-slim\nRUN echo serve > /built-by\n',
        tags: [tag],
        scan: { policy: { ignore_unfixed: true } },
        sign: true,
        push_to: [release],
      });
      assert.equal(build.state, 'succeeded', JSON.stringify(build.error));
      assert.deepEqual(
        build.result.stages.map((s: any) => [s.name, s.state]),
        [
          ['build', 'succeeded'],
          ['scan', 'succeeded'],
          ['gate', 'succeeded'],
          ['sign', 'succeeded'],
          ['attest', 'succeeded'],
          ['push', 'succeeded'],
        ],
      );
      assert.ok(
        build.result.vulnerabilities.some((v: any) => v.id === 'CVE-2011-3374'),
        'Trivy read the image',
      );
      assert.deepEqual(build.result.pushed, [{ reference: release, digest: build.result.build.digest }]);
      const client = new RegistryClient(REGISTRY, { credentials: registryCredentials(stateDir) });
      assert.equal(await client.manifestDigest('release/app', '1'), build.result.build.digest);

      const verify = await submit({ action: 'verify', image: release });
      assert.equal(verify.result.verification.verified, true, JSON.stringify(verify.result.verification));
      // A Docker Hub reference goes to the mirror, with the mirror's credentials.
      const inspect = await submit({ action: 'inspect', image: 'debian:bookworm-slim', platform: 'linux/amd64' });
      assert.equal(inspect.state, 'succeeded', JSON.stringify(inspect.error));
      assert.equal(inspect.result.image_info.os, 'linux');
    },
  );

  it('signs with the default key it generated: listed with its PEM, verified by the real cosign, secret nowhere', async () => {
    const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
    const key = await defaultKey(token);
    assert.match(key.public_key, /^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n$/);
    assert.equal(key.public_key.trim(), readFileSync(join(stateDir, 'signing', 'cosign.pub'), 'utf8').trim());
    signingPublicKey = key.public_key;
    // The seed's form: an image without a registry, and the registry beside it.
    const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ action: 'sign', image: 'serve/app:1', registry: REGISTRY }),
    });
    assert.equal(res.status, 202);
    const sign = await waitJob(token, ((await res.json()) as { id: string }).id);
    assert.equal(sign.state, 'succeeded', JSON.stringify(sign.error));
    assert.deepEqual(sign.request, { action: 'sign', image: `${REGISTRY}/serve/app:1` }, 'stored with the full reference');
    assert.equal(sign.result.signed.key, 'default');
    const pub = join(tempDir('stv-serve-pub-'), 'default.pub');
    writeFileSync(pub, key.public_key);
    // Offline, as cosign-client verifies; the registry's credentials from serve's DOCKER_CONFIG.
    await runProcess(
      TOOLS.cosign,
      ['verify', '--key', pub, '--insecure-ignore-tlog=true', '--allow-http-registry=true', '--', sign.result.signed.reference],
      { env: { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_CONFIG: join(stateDir, 'docker') } },
    );
    assertNoKeyPasswordPrinted(stateDir);
    const password = readFileSync(join(stateDir, 'signing', 'cosign.password'), 'utf8').trim();
    const redis = redisOf(stateDir);
    const dump = JSON.stringify(await dumpRedis(redis));
    await redis.quit();
    assert.ok(dump.includes(sign.result.signed.digest), 'the dump holds the job records');
    assert.ok(!dump.includes(password), 'Redis holds the signing key password');
  });

  it('signs every pushed build by default and attaches a CycloneDX SBOM the real cosign verifies', { timeout: 600_000 }, async () => {
    const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        action: 'build',
        dockerfile_inline: 'FROM debian:bookworm-slim\nRUN echo plain > /plain\n',
        tags: [`${REGISTRY}/serve/plain:1`],
      }),
    });
    assert.equal(res.status, 202);
    const build = await waitJob(token, ((await res.json()) as { id: string }).id);
    assert.equal(build.state, 'succeeded', JSON.stringify(build.error));
    assert.equal(build.result.signed?.key, 'default', JSON.stringify(build.result.pipeline));
    assert.ok(build.result.attestations.includes('cyclonedx'), JSON.stringify(build.result.attestations));
    const pub = join(tempDir('stv-serve-pub-'), 'default.pub');
    writeFileSync(pub, (await defaultKey(token)).public_key);
    const pinned = `${REGISTRY}/serve/plain@${build.result.build.digest}`;
    const env = { env: { PATH: process.env.PATH, HOME: process.env.HOME, DOCKER_CONFIG: join(stateDir, 'docker') } };
    const offline = ['--insecure-ignore-tlog=true', '--allow-http-registry=true'];
    await runProcess(TOOLS.cosign, ['verify', '--key', pub, ...offline, '--', pinned], env);
    // The SBOM attestation sits on each platform manifest (the index holds the image and its provenance).
    for (const { digest } of build.result.attested as { digest: string }[]) {
      const out = await runProcess(
        TOOLS.cosign,
        ['verify-attestation', '--key', pub, '--type', 'cyclonedx', ...offline, '--', `${REGISTRY}/serve/plain@${digest}`],
        env,
      );
      const statement = JSON.parse(Buffer.from(JSON.parse(out.stdout.trim().split('\n')[0]!).payload, 'base64').toString('utf8'));
      assert.equal(statement.predicateType, 'https://cyclonedx.org/bom');
      assert.ok(statement.predicate.components?.length > 0, 'the SBOM lists the packages');
    }
  });

  it('loses no Redis data when killed outright and started again (with the same password)', async () => {
    const password = secretOf(stateDir, 'redis-password');
    const redis = redisOf(stateDir);
    await redis.set('stevedore:test:survivor', 'still-here');
    await redis.quit();
    await new Promise((r) => setTimeout(r, 1_500)); // appendfsync everysec
    const orphans = pidsOf(stateDir);
    child!.kill('SIGKILL');
    await exited(child!);

    child = serve(stateDir);
    await waitReady(child);
    assert.equal(secretOf(stateDir, 'redis-password'), password, 'the password is generated once');
    const redis2 = redisOf(stateDir);
    assert.equal(await redis2.get('stevedore:test:survivor'), 'still-here');
    await redis2.quit();
    const token = readFileSync(join(stateDir, 'admin-token'), 'utf8').trim();
    assert.equal((await defaultKey(token)).public_key, signingPublicKey, 'the default signing key is made once, then reused');
    assertNoKeyPasswordPrinted(stateDir);
    assert.deepEqual(orphans.filter(alive), [], 'the daemons the killed serve left behind were stopped');
  });

  it('stops its daemons on SIGTERM', async () => {
    const pids = pidsOf(stateDir);
    assert.equal(pids.length, 3);
    child!.kill('SIGTERM');
    assert.equal(await exited(child!), 0);
    assert.deepEqual(pids.filter(alive), [], 'no daemon outlives serve');
  });
});
