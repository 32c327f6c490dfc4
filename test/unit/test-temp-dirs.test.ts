import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { testConfig } from '../support/env.js';
import { roleEnv } from '../support/fault-helpers.js';

const underTmp = (dir: string | undefined) => !!dir && dir.startsWith(`${tmpdir()}/`);

/**
 * Tests own their state: an app, worker or serve a test starts keeps its state (artifacts,
 * uploaded contexts, the Trivy DB, secrets) in a temp dir of the test's, never in the
 * machine's /var/lib/stevedore, and the temp dirs go when the test file ends.
 */
describe('the state of what a test starts', () => {
  it('an in-process app: a state dir of its own, and the Trivy cache in it unless the test names one', () => {
    const config = testConfig();
    assert.ok(underTmp(config.stateDir), config.stateDir);
    assert.equal(config.trivy.cacheDir, join(config.stateDir, 'trivy'));
    assert.notEqual(testConfig().stateDir, config.stateDir, 'each app its own, unless the test shares one');
    assert.equal(testConfig({ stateDir: config.stateDir }).trivy.cacheDir, join(config.stateDir, 'trivy'));
  });

  it('a spawned api, worker or serve: its state dir and its TMPDIR (scratch of a killed build)', () => {
    const env = roleEnv({});
    assert.ok(underTmp(env.STEVEDORE_STATE_DIR), env.STEVEDORE_STATE_DIR);
    assert.ok(underTmp(env.TMPDIR), env.TMPDIR);
    assert.equal(roleEnv({ STEVEDORE_STATE_DIR: '/x' }).STEVEDORE_STATE_DIR, '/x', 'a test may name its own');
  });
});

describe('tempDir', () => {
  const helper = new URL('../support/temp-dir.js', import.meta.url).href;
  /** A process that makes a temp dir with a file (and, as root, a mount) in it, then ends as `end` says. */
  const run = (end: string, mount = false) => {
    const script = [
      `import { mkdirSync, writeFileSync } from 'node:fs';`,
      `import { execFileSync } from 'node:child_process';`,
      `import { tempDir } from ${JSON.stringify(helper)};`,
      `const dir = tempDir('stv-selftest-');`,
      `writeFileSync(dir + '/file', 'x');`,
      mount ? `mkdirSync(dir + '/m'); execFileSync('mount', ['-t', 'tmpfs', 'tmpfs', dir + '/m']);` : '',
      `console.log(dir);`,
      end,
    ].join('\n');
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    const dir = r.stdout.trim();
    assert.ok(underTmp(dir), `no dir made: ${r.stderr}`);
    return dir;
  };

  it('is gone when its process exits, whether it passes, fails or throws', () => {
    for (const end of ['', 'process.exitCode = 1;', `throw new Error('boom');`]) {
      const dir = run(end);
      assert.equal(existsSync(dir), false, `${dir} left behind by a process ending with "${end}"`);
    }
  });

  const notRoot = process.getuid?.() !== 0 && 'needs root (mount)';
  it('is gone even with a mount left in it (the network namespace of a RUN step)', { skip: notRoot }, () => {
    const dir = run('', true);
    assert.equal(existsSync(dir), false, `${dir} left behind with a mount in it`);
  });
});
