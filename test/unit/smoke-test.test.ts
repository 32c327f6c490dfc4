import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SmokeLogCapture } from '../../src/engines/buildkit/smoke-log-capture.js';
import { exitCodeOf, smokeDockerfile, type SmokeRun } from '../../src/engines/buildkit/smoke-run.js';
import { checkBuildPolicy } from '../../src/admission/build-policy.js';
import { loadConfig, parseDefaultPipeline } from '../../src/config/config.js';
import type { JobRequest } from '../../src/jobs/job-types.js';
import { compareSmokeRuns, describeRun } from '../../src/workers/smoke-compare.js';

const run = (over: Partial<SmokeRun>): SmokeRun => ({
  exit_code: 0,
  stdout: '42\n',
  stderr: '',
  timed_out: false,
  stdout_truncated: false,
  stderr_truncated: false,
  ...over,
});
const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('smoke test comparison', () => {
  it('passes the same exit code and stdout, whatever stderr says', () => {
    assert.deepEqual(compareSmokeRuns(run({ stderr: 'took 3 ms' }), run({ stderr: 'took 5 ms' })), {
      smoke_test: 'passed',
      reason: 'same exit code (0) and stdout',
    });
  });

  it('passes two programs still running at the time limit, whatever they printed', () => {
    const server = run({ exit_code: null, timed_out: true });
    assert.equal(compareSmokeRuns({ ...server, stdout: 'a' }, { ...server, stdout: 'b' }).smoke_test, 'passed');
  });

  it('fails a rewrite that exits where the original keeps running, and the reverse', () => {
    const server = run({ exit_code: null, timed_out: true });
    assert.match(compareSmokeRuns(server, run({ exit_code: 1 })).reason, /rewrite exited with code 1; the original was still running/);
    assert.equal(compareSmokeRuns(run({}), server).smoke_test, 'failed');
  });

  it('fails different exit codes, different stdout, and a program that did not start', () => {
    assert.match(compareSmokeRuns(run({}), run({ exit_code: 3 })).reason, /exit codes differ: original 0, rewrite 3/);
    assert.deepEqual(compareSmokeRuns(run({}), run({ stdout: '43\n' })), { smoke_test: 'failed', reason: 'stdout differs' });
    const notStarted = run({ exit_code: null, error: 'exec: "/app": no such file' });
    assert.match(compareSmokeRuns(run({}), notStarted).reason, /rewrite did not start/);
    assert.equal(compareSmokeRuns(notStarted, notStarted).smoke_test, 'failed');
  });

  it('passes the same non-zero exit with the same stdout, saying so', () => {
    assert.deepEqual(compareSmokeRuns(run({ exit_code: 2 }), run({ exit_code: 2 })), {
      smoke_test: 'passed',
      reason: 'both exited with code 2, same stdout',
    });
  });

  it('shows the last 2 KiB of each output', () => {
    const shown = describeRun(run({ stdout: 'x'.repeat(5000) + 'END', stdout_truncated: true }));
    assert.equal((shown.stdout as string).length, 2049);
    assert.ok((shown.stdout as string).endsWith('END'));
    assert.deepEqual(shown.output_truncated, { stdout: true, stderr: false });
  });
});

describe('smoke run through BuildKit', () => {
  it('writes the pinned image and the exec-form command, one line each, whatever the arguments hold', () => {
    const argv = ['sh', '-c', 'echo "$X"\nRUN evil <<EOF\\', '${HOME}'];
    const text = smokeDockerfile(`127.0.0.1:5000/stevedore-optimize/j1@${DIGEST}`, argv);
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.length, 2);
    assert.equal(lines[0], `FROM 127.0.0.1:5000/stevedore-optimize/j1@${DIGEST}`);
    assert.deepEqual(JSON.parse(lines[1]!.replace('RUN --network=none ', '')), argv);
  });

  it('refuses an image not pinned by digest, an empty command and NUL bytes', () => {
    assert.throws(() => smokeDockerfile('127.0.0.1:5000/a:latest', ['true']), /pinned by digest/);
    assert.throws(() => smokeDockerfile(`127.0.0.1:5000/a@${DIGEST}`, []), /no ENTRYPOINT or CMD/);
    assert.throws(() => smokeDockerfile(`127.0.0.1:5000/a@${DIGEST}`, ['a\0b']), /NUL/);
  });

  it("reads the exit code from BuildKit's step error, and nothing from a cancelled or unstarted step", () => {
    assert.equal(exitCodeOf('process "/app" did not complete successfully: exit code: 3'), 3);
    assert.equal(exitCodeOf('process "sleep 1000" did not complete successfully: exit code: 137: context canceled'), null);
    assert.equal(exitCodeOf('failed to create shim task: exec: "/nothere": no such file or directory'), null);
  });

  it("captures the marked step's stdout and stderr up to the cap, and its state", () => {
    const capture = new SmokeLogCapture('RUN --network=none ', 4);
    let started = 0;
    capture.onStepStarted = () => started++;
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    // logs before the vertex that names the step, other steps' logs, plain text lines
    capture.feed(JSON.stringify({ logs: [{ vertex: 'sha256:run', stream: 1, data: b64('ab') }] }));
    capture.feed('not json');
    capture.feed(JSON.stringify({ vertexes: [{ digest: 'sha256:other', name: '[1/2] RUN echo x', started: 't' }] }));
    capture.feed(JSON.stringify({ vertexes: [{ digest: 'sha256:run', name: '[2/2] RUN --network=none ["x"]', started: 't' }] }));
    capture.feed(JSON.stringify({ logs: [{ vertex: 'sha256:other', stream: 1, data: b64('zz') }] }));
    capture.feed(JSON.stringify({ logs: [{ vertex: 'sha256:run', stream: 1, data: b64('cdef') }] }));
    capture.feed(JSON.stringify({ logs: [{ vertex: 'sha256:run', stream: 2, data: b64('e') }] }));
    assert.equal(started, 1);
    assert.equal(capture.finished(), false);
    assert.deepEqual(capture.output(), { stdout: 'abcd', stderr: 'e', stdout_truncated: true, stderr_truncated: false });
    capture.feed(JSON.stringify({ vertexes: [{ digest: 'sha256:run', started: 't', completed: 'u', error: 'exit code: 1' }] }));
    assert.equal(capture.finished(), true);
    assert.equal(capture.stepError(), 'exit code: 1');
    assert.equal(started, 1);
  });
});

describe('smoke test configuration', () => {
  it('runs smoke tests through BuildKit for 10 s by default, and takes docker, none and another limit', () => {
    const c = loadConfig({});
    assert.deepEqual([c.smokeRuntime, c.smokeTimeoutSeconds], ['buildkit', 10]);
    const d = loadConfig({ STEVEDORE_SMOKE_RUNTIME: 'docker', STEVEDORE_SMOKE_TIMEOUT_SECONDS: '30' });
    assert.deepEqual([d.smokeRuntime, d.smokeTimeoutSeconds], ['docker', 30]);
    assert.equal(loadConfig({ STEVEDORE_SMOKE_RUNTIME: 'none' }).smokeRuntime, 'none');
    assert.throws(() => loadConfig({ STEVEDORE_SMOKE_RUNTIME: 'podman' }), /must be buildkit, docker or none/);
    assert.throws(() => loadConfig({ STEVEDORE_SMOKE_TIMEOUT_SECONDS: '0' }), /at least 1/);
  });
});

describe('optimize verify platform policy', () => {
  const config = {
    buildPlatforms: ['linux/amd64', 'linux/arm64'],
    buildSecrets: {},
    contextRoot: undefined,
    defaultPipeline: parseDefaultPipeline('sbom,sign'),
  };
  const optimize = (over: object) => ({ action: 'optimize', dockerfile_inline: 'FROM scratch', ...over }) as unknown as JobRequest;

  it('builds for an allowed platform only when verify builds at all', () => {
    checkBuildPolicy(optimize({ verify: true, platform: 'linux/arm64' }), config);
    checkBuildPolicy(optimize({ platform: 'linux/s390x' }), config); // analysis of an image variant: nothing is built
    assert.throws(
      () => checkBuildPolicy(optimize({ verify: true, platform: 'linux/s390x' }), config),
      /platform: linux\/s390x is not allowed here/,
    );
  });
});
