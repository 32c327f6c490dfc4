import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess } from '../../src/engines/process-runner.js';
import { RegistryClient } from '../../src/engines/registry/registry-client.js';
import { CACHE_DIR, PROJECT_DIR, TOOLS } from '../support/env.js';
import { baseLayoutDir } from '../../src/runtime/seed-base-image.js';
import { makeTrivyCache } from '../support/trivy-db.js';
import { runCli, showRun } from '../support/cli-run.js';
import { AUTH, TOKEN, freePort, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

const PASSWORD = `pw-cli-${Date.now()}`;
process.env.STV_TEST_COSIGN_PASSWORD = PASSWORD;
const VERSION = (JSON.parse(readFileSync(join(PROJECT_DIR, 'package.json'), 'utf8')) as { version: string }).version;

const cli = runCli;

const show = showRun;

async function keyPair(dir: string, name: string): Promise<string> {
  await runProcess(TOOLS.cosign, ['generate-key-pair', '--output-key-prefix', join(dir, name)], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, COSIGN_PASSWORD: PASSWORD },
  });
  return join(dir, `${name}.key`);
}

function contextDir(files: Record<string, string>): string {
  const dir = tempDir('stv-cli-ctx-');
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return dir;
}

describe('the stevedore CLI as a client of a running server', () => {
  let stack: Stack;
  let env: Record<string, string>;
  let registry: string;
  let debian: string;
  let built: { id: string; tag: string };
  let failedId: string;
  const api = async (path: string, init: RequestInit = {}) =>
    (await fetch(stack.base + path, { ...init, headers: { ...AUTH, ...(init.headers ?? {}) } })).json() as Promise<any>;

  before(async () => {
    const keysDir = tempDir('stv-cli-keys-');
    const keysFile = join(keysDir, 'keys.json');
    writeFileSync(
      keysFile,
      JSON.stringify({
        default: 'release',
        keys: [{ name: 'release', key: await keyPair(keysDir, 'release'), password_env: 'STV_TEST_COSIGN_PASSWORD' }],
      }),
    );
    const cacheDir = await makeTrivyCache();
    stack = await startStack({ buildkit: true, overrides: { trivy: { cacheDir, dbUpdate: false }, signing: { offline: true, keysFile } } });
    env = { STEVEDORE_URL: stack.base, STEVEDORE_TOKEN: TOKEN };
    registry = stack.registry.address;
    debian = `${registry}/library/debian:bookworm-slim`;
  });
  after(async () => stack?.stop());

  it('prints its version with --version, without a server', async () => {
    const r = await cli(['--version']);
    assert.equal(r.code, 0, show(r));
    assert.equal(r.stdout.trim(), VERSION);
  });

  it('builds a directory with live step progress like buildx, and exits 0', async () => {
    const tag = `${registry}/cli/app:1`;
    const dir = contextDir({
      Dockerfile: `FROM debian:bookworm-slim\nRUN echo hello-from-cli-${Date.now()}\nCOPY hello.txt /hello.txt\n`,
      'hello.txt': 'hello\n',
    });
    const r = await cli(['build', dir, '-t', tag], env);
    assert.equal(r.code, 0, show(r));
    const run = r.stderr.match(/^#(\d+) \[2\/3\] RUN echo hello-from-cli/m);
    assert.ok(run, show(r));
    assert.match(r.stderr, new RegExp(`^#${run[1]} \\d+\\.\\d{3} hello-from-cli`, 'm'), 'its log line, under its step number');
    assert.match(r.stderr, new RegExp(`^#${run[1]} DONE \\d+\\.\\ds$`, 'm'));
    assert.match(r.stderr, /^#\d+ \[1\/3\] FROM /m);
    assert.match(r.stdout, new RegExp(`^built ${tag.replace(/[.]/g, '\\.')} sha256:[0-9a-f]{64} in `, 'm'));
    const id = r.stderr.match(/^job ([0-9a-f-]{36}) \(build\)/m)?.[1];
    assert.ok(id, show(r));
    built = { id, tag };

    // The same build again: its steps come from the cache.
    const again = await cli(['build', dir, '-t', tag], env);
    assert.equal(again.code, 0, show(again));
    assert.match(again.stderr, /^#\d+ CACHED$/m, show(again));
  });

  it('--json prints the final job record only', async () => {
    const dir = contextDir({ Dockerfile: 'FROM debian:bookworm-slim\nCOPY a.txt /a.txt\n', 'a.txt': 'a\n' });
    const r = await cli(['build', dir, '-t', `${registry}/cli/json:1`, '--json'], env);
    assert.equal(r.code, 0, show(r));
    const job = JSON.parse(r.stdout);
    assert.equal(job.state, 'succeeded');
    assert.match(job.result.build.digest, /^sha256:/);
    assert.doesNotMatch(r.stderr, /^#\d+ /m, 'no progress with --json');
  });

  it('a failing build exits 1 and shows the failing step and its output', async () => {
    const dir = contextDir({ Dockerfile: `FROM debian:bookworm-slim\nRUN echo boom-${Date.now()} && exit 3\n` });
    const r = await cli(['build', dir], env);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /^#\d+ \[2\/2\] RUN echo boom-\d+ && exit 3$/m, show(r));
    assert.match(r.stderr, /^#\d+ ERROR: .*exit code: 3/m);
    assert.match(r.stderr, /^ > \[2\/2\] RUN echo boom-\d+ && exit 3:$/m);
    assert.match(r.stderr, /^error BUILD_FAILED: /m);
    failedId = r.stderr.match(/^job ([0-9a-f-]{36})/m)![1]!;
  });

  it('inspects an image', async () => {
    const r = await cli(['inspect', built.tag], env);
    assert.equal(r.code, 0, show(r));
    const digest = await new RegistryClient(registry).manifestDigest('cli/app', '1');
    assert.match(r.stdout, new RegExp(`^reference +${built.tag.replace(/[.]/g, '\\.')}$`, 'm'), show(r));
    assert.ok(digest && r.stdout.includes(digest), show(r));
    assert.match(r.stdout, /^LAYER +SIZE +CREATED BY$/m);
    const json = await cli(['inspect', built.tag, '--json'], env);
    assert.equal(JSON.parse(json.stdout).result.image_info.digest, digest);
  });

  it('jobs list, get and watch', async () => {
    const list = await cli(['jobs', 'list', '--action', 'build', '--limit', '50'], env);
    assert.equal(list.code, 0, show(list));
    assert.match(list.stdout, /^ID +ACTION +STATE +CREATED +SUBJECT$/m);
    assert.match(list.stdout, new RegExp(`^${built.id} +build +succeeded `, 'm'));
    const failedOnly = await cli(['jobs', 'list', '--state', 'failed', '--json'], env);
    assert.deepEqual(
      JSON.parse(failedOnly.stdout).items.map((j: any) => j.id),
      [failedId],
    );

    const get = await cli(['jobs', 'get', built.id], env);
    assert.equal(get.code, 0, show(get));
    assert.match(get.stdout, /^state +succeeded$/m);
    assert.match(get.stdout, /^built /m);

    const watched = await cli(['jobs', 'watch', built.id], env);
    assert.equal(watched.code, 0, show(watched));
    assert.match(watched.stderr, /^#\d+ \[2\/3\] RUN echo hello-from-cli/m, 'a finished job replays its events');
    const watchedFailed = await cli(['jobs', 'watch', failedId], env);
    assert.equal(watchedFailed.code, 1, show(watchedFailed));
  });

  it('jobs cancel stops a running build; its watcher exits 4', async () => {
    const dockerfile = join(contextDir({}), 'Dockerfile.sleep');
    writeFileSync(dockerfile, `FROM debian:bookworm-slim\nRUN sleep 300 # ${Date.now()}\n`);
    const submitted = await cli(['build', '-f', dockerfile, '--no-wait'], env);
    assert.equal(submitted.code, 0, show(submitted));
    const id = submitted.stdout.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    let sawSleep!: () => void;
    const sleeping = new Promise<void>((resolve) => (sawSleep = resolve));
    const watch = cli(['jobs', 'watch', id], env, (text) => /\[2\/2\] RUN sleep 300/.test(text) && sawSleep());
    await sleeping;
    const cancel = await cli(['jobs', 'cancel', id], env);
    assert.equal(cancel.code, 0, show(cancel));
    assert.match(cancel.stdout, new RegExp(`cancel(l?ed|ling) ${id}`));
    const watched = await watch;
    assert.equal(watched.code, 4, show(watched));
    assert.match(watched.stderr, /^=> cancelled$/m);
    assert.match(watched.stderr, /^error CANCELLED: /m);
    assert.equal((await api(`/v1/jobs/${id}`)).state, 'cancelled');

    const again = await cli(['jobs', 'cancel', id], env);
    assert.equal(again.code, 2, show(again));
    assert.match(again.stderr, /error JOB_FINISHED: /);
  });

  it('scans with a severity table: a passing gate exits 0, a failing one 3', async () => {
    const pass = await cli(['scan', debian, '--severity', 'LOW,MEDIUM'], env);
    assert.equal(pass.code, 0, show(pass));
    assert.match(pass.stdout, /^SEVERITY +COUNT +FIXABLE$/m);
    assert.match(pass.stdout, /^LOW +[1-9]\d* +\d+$/m);
    assert.match(pass.stdout, /^CVE-2011-3374 +LOW +apt /m);
    assert.match(pass.stdout, /^policy: PASSED/m);

    const fail = await cli(['scan', debian, '--max-low', '0'], env);
    assert.equal(fail.code, 3, show(fail));
    assert.match(fail.stdout, /^policy: FAILED \(\d+ violations?\)$/m);
    assert.match(fail.stdout, /^ {2}max_low=0: .*CVE-2011-3374 \(apt\)/m);
    assert.match(fail.stderr, /error POLICY_FAILED/);
    const json = await cli(['scan', debian, '--max-low', '0', '--json'], env);
    assert.equal(json.code, 3);
    assert.equal(JSON.parse(json.stdout).result.policy.passed, false);

    // A build pipeline's gate fails the job itself (POLICY_FAILED): exit 3 too.
    const dir = contextDir({ Dockerfile: 'FROM debian:bookworm-slim\nCOPY b.txt /b.txt\n', 'b.txt': 'b\n' });
    const gated = await cli(['build', dir, '-t', `${registry}/cli/gated:1`, '--scan', '--max-low', '0', '--scanners', 'vuln'], env);
    assert.equal(gated.code, 3, show(gated));
    assert.match(gated.stderr, /^=> stage scan started$/m);
    assert.match(gated.stderr, /^error POLICY_FAILED: policy gate failed: /m);
    assert.match(gated.stderr, /^ {2}max_low=0: CVE-2011-3374 \(apt\)/m);
  });

  it('signs and verifies (exit 0); an unsigned image does not verify (exit 3)', async () => {
    const signed = await cli(['sign', debian], env);
    assert.equal(signed.code, 0, show(signed));
    assert.match(signed.stdout, /^signed .*\/library\/debian@sha256:[0-9a-f]{64} with key release$/m);
    const verified = await cli(['verify', debian], env);
    assert.equal(verified.code, 0, show(verified));
    assert.match(verified.stdout, /^verified /m);
    // Builds are signed by default now (STEVEDORE_DEFAULT_PIPELINE): an image pushed
    // straight to the registry, around stevedore, is one nobody signed.
    await new RegistryClient(registry).pushLayout(baseLayoutDir(CACHE_DIR), 'cli/unsigned', '1');
    const unsigned = await cli(['verify', `${registry}/cli/unsigned:1`], env);
    assert.equal(unsigned.code, 3, show(unsigned));
    assert.match(unsigned.stdout, /^NOT verified /m);
    assert.match(unsigned.stderr, /^error NOT_VERIFIED: /m);
  });

  it('optimizes a Dockerfile (writing the rewrite with -o) and pushes a copy', async () => {
    const dir = contextDir({
      Dockerfile: 'FROM debian:bookworm-slim\nRUN apt-get update\nRUN apt-get install -y curl\nCMD bash -c "echo hi"\n',
    });
    const output = join(dir, 'Dockerfile.optimized');
    const r = await cli(['optimize', join(dir, 'Dockerfile'), '-o', output], env);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /^SEVERITY +RULE +LINE +SAVES +TITLE$/m, show(r));
    assert.match(r.stdout, /^optimized Dockerfile: [1-9]\d* safe rewrites?/m);
    assert.match(readFileSync(output, 'utf8'), /--no-install-recommends/);

    const copy = `${registry}/cli/copy:1`;
    const pushed = await cli(['push', debian, copy], env);
    assert.equal(pushed.code, 0, show(pushed));
    assert.match(pushed.stdout, new RegExp(`^pushed ${copy.replace(/[.]/g, '\\.')}@sha256:[0-9a-f]{64}$`, 'm'));
  });

  it('usage and validation errors exit 2 with a clear message', async () => {
    const noArgs = await cli(['build'], env);
    assert.equal(noArgs.code, 2, show(noArgs));
    assert.match(noArgs.stderr, /^stevedore build: give a context directory or -f DOCKERFILE$/m);
    const unknown = await cli(['scan', debian, '--bogus'], env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown option '--bogus'/);
    const badNumber = await cli(['scan', debian, '--max-high', 'lots'], env);
    assert.equal(badNumber.code, 2);
    assert.match(badNumber.stderr, /--max-high lots: expected a whole number/);
    // The server's own validation: its error code, message and field list.
    const invalid = await cli(['inspect', 'Not A Reference!'], env);
    assert.equal(invalid.code, 2, show(invalid));
    assert.match(invalid.stderr, /^stevedore inspect: error VALIDATION_FAILED: /m);
    assert.match(invalid.stderr, /^ {2}image: /m);
    const badToken = await cli(['jobs', 'list'], { ...env, STEVEDORE_TOKEN: 'not-the-token-0123456789' });
    assert.equal(badToken.code, 2, show(badToken));
    assert.match(badToken.stderr, /error UNAUTHORIZED/);
    const noJob = await cli(['jobs', 'get', '00000000-0000-4000-8000-000000000000'], env);
    assert.equal(noJob.code, 2);
    assert.match(noJob.stderr, /error NOT_FOUND/);
  });

  it('exits 5 when the server is unreachable', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const r = await cli(['inspect', debian], { STEVEDORE_URL: url, STEVEDORE_TOKEN: TOKEN });
    assert.equal(r.code, 5, show(r));
    assert.match(r.stderr, new RegExp(`cannot reach stevedore at ${url.replace(/[.]/g, '\\.')}: ECONNREFUSED`));
  });
});
