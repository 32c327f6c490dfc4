import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PROJECT_DIR } from '../support/env.js';

/** with_progress of scripts/lib.sh: the elapsed-time lines and step times of `npm start`'s setup. */
describe('setup progress (scripts/lib.sh)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'stevedore-progress-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const stepLog = join(dir, 'steps');
  const script = `
    source scripts/lib.sh
    export STEVEDORE_STEP_LOG="$1" STEVEDORE_PROGRESS_INTERVAL=1
    echo "dur=$(fmt_dur 59) $(fmt_dur 60) $(fmt_dur 150)"
    with_progress "sleeping step" sleep 3.5
    set +e
    with_progress "failing step" bash -c 'exit 3'; echo "failing rc=$?"
    with_progress "dying step" die "gone"; echo "dying rc=$?"
    echo "jobs=$(jobs -p | wc -l)"`;
  const run = spawnSync('bash', ['-c', script, 'bash', stepLog], { cwd: PROJECT_DIR, encoding: 'utf8', env: { ...process.env } });

  it('prints a line with the elapsed time while a step runs, and its time at the end', () => {
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /^dur=59s 1m00s 2m30s$/m);
    assert.match(run.stderr, /sleeping step …\n/);
    // A tick every second: on a loaded machine one may come late (2s, not 1s), never none in 3.5 s.
    assert.match(run.stderr, /sleeping step … [1-3]s\n/);
    assert.match(run.stderr, /sleeping step: done in [3-9]s\n/);
  });

  it("passes a step's failure on, also a `die` inside it, and leaves no ticker behind", () => {
    assert.match(run.stdout, /^failing rc=3$/m);
    assert.match(run.stderr, /failing step: failed after \ds/);
    assert.match(run.stdout, /^dying rc=1$/m);
    assert.match(run.stdout, /^jobs=0$/m);
  });

  it('records every step with its seconds for the summary', () => {
    const lines = readFileSync(stepLog, 'utf8').trim().split('\n');
    assert.deepEqual(
      lines.map((l) => l.split('\t')[1]),
      ['sleeping step', 'failing step', 'dying step'],
    );
    assert.ok(Number(lines[0]!.split('\t')[0]) >= 2, lines[0]);
  });
});
