import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildkitClient, parseWorkers } from '../../src/engines/buildkit/buildkit-client.js';
import type { ProcessRunner, RunOptions } from '../../src/engines/process-runner.js';
import { assertRepository, assertTag, InvalidReferenceError } from '../../src/oci/references.js';
import { buildkitdConfig } from '../../src/runtime/buildkitd.js';

/** Records calls and answers with canned output: for our own logic, not the tool's. */
class FakeRunner implements ProcessRunner {
  calls: { command: string; args: readonly string[]; options?: RunOptions }[] = [];
  constructor(private readonly stdout: string) {}
  async run(command: string, args: readonly string[], options?: RunOptions) {
    this.calls.push({ command, args, options });
    return { stdout: this.stdout, stderr: '', durationMs: 1 };
  }
}

describe('BuildkitClient', () => {
  it('asks buildctl for workers with an argument array and a timeout', async () => {
    const runner = new FakeRunner(
      '[{"ID":"w1","Platforms":[{"OS":"linux","Architecture":"amd64"},{"OS":"linux","Architecture":"arm","Variant":"v7"}]}]',
    );
    const workers = await new BuildkitClient(runner, '/bin/buildctl', 'unix:///run/bk.sock').workers(1234);
    assert.deepEqual(workers, [{ id: 'w1', platforms: ['linux/amd64', 'linux/arm/v7'] }]);
    assert.deepEqual(runner.calls[0]!.args, ['--addr', 'unix:///run/bk.sock', 'debug', 'workers', '--format', '{{json .}}']);
    assert.equal(runner.calls[0]!.options?.timeoutMs, 1234);
  });

  it('treats empty output as no workers', () => {
    assert.deepEqual(parseWorkers('\n'), []);
  });
});

describe('reference validation', () => {
  it('accepts ordinary names', () => {
    assertRepository('library/debian');
    assertRepository('team-a/app_1.web');
    assertTag('bookworm-slim');
  });
  it('refuses option-like, traversing or malformed values', () => {
    for (const bad of ['-rf', '../etc', 'UPPER/case', 'a//b', 'a/', ''])
      assert.throws(() => assertRepository(bad), InvalidReferenceError, bad);
    for (const bad of ['-x', '.hidden', 'a b', 'x'.repeat(129)]) assert.throws(() => assertTag(bad), InvalidReferenceError, bad);
  });
});

describe('buildkitdConfig', () => {
  it('points docker.io at the mirror and allows plain HTTP to it', () => {
    const toml = buildkitdConfig('/s/root', 'unix:///s/bk.sock', '127.0.0.1:5000');
    assert.match(toml, /\[registry\."docker\.io"\]\n {2}mirrors = \["127\.0\.0\.1:5000"\]/);
    assert.match(toml, /\[registry\."127\.0\.0\.1:5000"\]\n {2}http = true/);
    assert.match(toml, /\[worker\.containerd\]\n {2}enabled = false/);
  });
});
