import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ProcessError, runProcess } from '../../src/engines/process-runner.js';

const node = process.execPath;

describe('runProcess (against real processes)', () => {
  it('returns stdout and streams lines as they come', async () => {
    const lines: string[] = [];
    const { stdout } = await runProcess(node, ['-e', 'console.log("a"); console.log("b")'], { onStdoutLine: (l) => lines.push(l) });
    assert.equal(stdout, 'a\nb\n');
    assert.deepEqual(lines, ['a', 'b']);
  });

  it('passes arguments literally, never through a shell', async () => {
    const { stdout } = await runProcess(node, ['-e', 'console.log(process.argv[1])', '$(echo pwned); rm -rf /']);
    assert.equal(stdout.trim(), '$(echo pwned); rm -rf /');
  });

  it('turns a non-zero exit into a typed error that keeps stderr', async () => {
    await assert.rejects(runProcess(node, ['-e', 'console.error("boom: bad input"); process.exit(3)']), (err: unknown) => {
      assert.ok(err instanceof ProcessError);
      assert.equal(err.kind, 'exit');
      assert.equal(err.exitCode, 3);
      assert.match(err.stderrTail, /boom: bad input/);
      assert.match(err.message, /exited with code 3: boom: bad input/);
      return true;
    });
  });

  it('kills a process that outlives its timeout', async () => {
    const started = Date.now();
    await assert.rejects(
      runProcess(node, ['-e', 'setTimeout(() => {}, 60000)'], { timeoutMs: 300 }),
      (err: unknown) => err instanceof ProcessError && err.kind === 'timeout',
    );
    assert.ok(Date.now() - started < 10_000);
  });

  it('stops on abort', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    await assert.rejects(
      runProcess(node, ['-e', 'setTimeout(() => {}, 60000)'], { signal: controller.signal }),
      (err: unknown) => err instanceof ProcessError && err.kind === 'aborted',
    );
  });

  it('reports a missing program as a spawn error', async () => {
    await assert.rejects(runProcess('/nonexistent/tool', []), (err: unknown) => err instanceof ProcessError && err.kind === 'spawn');
  });

  it('feeds stdin and passes only the environment it is given', async () => {
    const { stdout } = await runProcess(
      node,
      [
        '-e',
        'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(s+":"+(process.env.ONLY??"")+":"+(process.env.HOME??"none")))',
      ],
      { input: 'hello', env: { ONLY: 'this' } },
    );
    assert.equal(stdout.trim(), 'hello:this:none');
  });
});
