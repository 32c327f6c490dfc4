import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { PROJECT_DIR, CACHE_DIR } from '../support/env.js';
import { freePort } from '../support/stack.js';

// Free ports of their own, chosen once for the file (the restart reuses them): a stevedore
// someone runs by hand on the defaults, or another test run on this machine, is left alone.
const HTTP_PORT = await freePort();
const GRPC_PORT = await freePort();
const REGISTRY = `127.0.0.1:${await freePort()}`;

function serve(stateDir: string): ChildProcess {
  const env = { PATH: process.env.PATH, STEVEDORE_STATE_DIR: stateDir, STEVEDORE_CACHE_DIR: CACHE_DIR, STEVEDORE_HTTP_PORT: String(HTTP_PORT), STEVEDORE_GRPC_PORT: String(GRPC_PORT), STEVEDORE_REGISTRY_LISTEN: REGISTRY, STEVEDORE_LOG_LEVEL: 'warn' };
  const child = spawn(process.execPath, [join(PROJECT_DIR, 'bin', 'stevedore.js'), 'serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr!.on('data', (d) => process.stderr.write(d));
  return child;
}

async function waitReady(child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`serve exited with ${child.exitCode}`);
    const status = await fetch(`http://127.0.0.1:${HTTP_PORT}/readyz`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error('serve not ready in time');
}

const exited = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

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
  const stateDir = mkdtempSync(join(tmpdir(), 'stv-serve-'));
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
    assert.match(endpoints.redis_url, /^redis:\/\/127\.0\.0\.1:\d+\/0$/);
    assert.equal(endpoints.buildkit_host, `unix://${join(stateDir, 'buildkit', 'buildkitd.sock')}`);
    assert.deepEqual(endpoints.embedded, { redis: true, buildkit: true, registry: true });
    assert.ok(await new RegistryClient(REGISTRY).manifestDigest('library/debian', 'bookworm-slim'), 'base image seeded');
    const tokenFile = join(stateDir, 'admin-token');
    assert.equal(statSync(tokenFile).mode & 0o777, 0o600);
    const token = readFileSync(tokenFile, 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${HTTP_PORT}/v1/system`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(res.status, 200);
  });

  it('loses no Redis data when killed outright and started again', async () => {
    const { redis_url } = JSON.parse(readFileSync(join(stateDir, 'serve.json'), 'utf8'));
    const redis = new Redis(redis_url);
    await redis.set('stevedore:test:survivor', 'still-here');
    await redis.quit();
    await new Promise((r) => setTimeout(r, 1_500)); // appendfsync everysec
    const orphans = pidsOf(stateDir);
    child!.kill('SIGKILL');
    await exited(child!);

    child = serve(stateDir);
    await waitReady(child);
    const again = JSON.parse(readFileSync(join(stateDir, 'serve.json'), 'utf8'));
    const redis2 = new Redis(again.redis_url);
    assert.equal(await redis2.get('stevedore:test:survivor'), 'still-here');
    await redis2.quit();
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
