import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EXIT, exitCodeForJob, exitCodeForStatus } from '../../src/cli/client/exit-codes.js';
import { apiError } from '../../src/cli/client/http.js';
import { BuildView } from '../../src/cli/client/render-build.js';
import { EventRenderer } from '../../src/cli/client/render-events.js';
import { renderJobError, renderResult } from '../../src/cli/client/render-results.js';
import { renderScan, severityTable } from '../../src/cli/client/render-scan.js';
import { parseFrame, parseSse } from '../../src/cli/client/sse.js';
import { COLOR, paintFor, table } from '../../src/cli/client/terminal.js';

const T0 = 1_700_000_000_000;
const step = (id: string, name: string, state: 'started' | 'completed' | 'error', extra: object = {}) => ({
  id,
  name,
  state,
  cached: false,
  duration_ms: null,
  ...extra,
});

describe('build progress like buildx', () => {
  it('numbers steps as first seen, prints each name once, logs with their offset, DONE and CACHED', () => {
    const view = new BuildView();
    const lines = [
      ...view.step(step('sha256:a', '[internal] load build definition from Dockerfile', 'started'), T0),
      ...view.step(step('sha256:a', '[internal] load build definition from Dockerfile', 'completed', { duration_ms: 40 }), T0 + 40),
      ...view.step(
        step('sha256:b', '[1/3] FROM docker.io/library/debian:bookworm-slim', 'completed', { cached: true, duration_ms: 0 }),
        T0 + 50,
      ),
      ...view.step(step('sha256:c', '[2/3] RUN echo hello', 'started'), T0 + 100),
      ...view.log('sha256:c', 'hello', T0 + 315),
      ...view.step(step('sha256:d', '[3/3] COPY . /app', 'started'), T0 + 120),
      ...view.step(step('sha256:c', '[2/3] RUN echo hello', 'completed', { duration_ms: 1_250 }), T0 + 1_350),
      ...view.step(step('sha256:d', '[3/3] COPY . /app', 'completed', { duration_ms: 20 }), T0 + 1_400),
    ];
    assert.deepEqual(lines, [
      '#1 [internal] load build definition from Dockerfile',
      '#1 DONE 0.0s',
      '#2 [1/3] FROM docker.io/library/debian:bookworm-slim',
      '#2 CACHED',
      '#3 [2/3] RUN echo hello',
      '#3 0.215 hello',
      '#4 [3/3] COPY . /app',
      '#3 DONE 1.3s',
      '#4 DONE 0.0s',
    ]);
  });

  it('shows a failing step with its error and ends with the failure block', () => {
    const view = new BuildView();
    const lines = [
      ...view.step(step('s1', '[2/2] RUN exit 3', 'started'), T0),
      ...view.step(
        step('s1', '[2/2] RUN exit 3', 'error', { error: 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3' }),
        T0 + 5,
      ),
    ];
    assert.deepEqual(lines, ['#1 [2/2] RUN exit 3', '#1 ERROR: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3']);
    const error = {
      code: 'BUILD_FAILED',
      message: 'step [2/2] RUN exit 3 failed: exit code: 3',
      details: { step: '[2/2] RUN exit 3', logs: ['boom'] },
    };
    assert.deepEqual(renderJobError('build', error), [
      '------',
      ' > [2/2] RUN exit 3:',
      'boom',
      '------',
      'error BUILD_FAILED: step [2/2] RUN exit 3 failed: exit code: 3',
    ]);
  });

  it('renders a whole event stream: states, progress, steps and logs without a step', () => {
    const r = new EventRenderer();
    const ev = (type: string, data: object) => ({ type: type as 'state', data: { at: T0, ...data } });
    assert.deepEqual(r.render(ev('state', { state: 'queued' })), ['=> queued']);
    assert.deepEqual(r.render(ev('state', { state: 'running', attempt: 2, retry: true })), ['=> running (attempt 2, retrying)']);
    assert.deepEqual(r.render(ev('progress', { message: 'building x:1' })), ['=> building x:1']);
    assert.deepEqual(r.render(ev('log', { stream: 'stdout', line: 'plain line' })), ['   plain line']);
    assert.deepEqual(r.render(ev('step', { step: step('s', '[1/1] RUN true', 'started') })), ['#1 [1/1] RUN true']);
    assert.deepEqual(r.render(ev('result', { result: {} })), []);
  });

  it('summarises a finished build', () => {
    const [line] = renderResult('build', {
      tags: ['r/app:1'],
      build: { duration_ms: 4_200, digest: 'sha256:abc', steps: [{}, {}, {}], cache_hits: 2 },
    });
    assert.equal(line, 'built r/app:1 sha256:abc in 4.2s (2 of 3 steps cached)');
  });
});

describe('scan severity table', () => {
  const vulns = [
    {
      id: 'CVE-2021-23337',
      package: 'lodash',
      installed_version: '4.17.20',
      fixed_version: '4.17.21',
      severity: 'HIGH',
      title: 'command injection',
    },
    {
      id: 'CVE-2011-3374',
      package: 'apt',
      installed_version: '2.6.1',
      fixed_version: null,
      severity: 'LOW',
      title: 'apt weak verification',
    },
    { id: 'CVE-2020-0001', package: 'libc', installed_version: '1', fixed_version: '2', severity: 'LOW', title: 'x' },
  ];

  it('counts findings and fixes per severity, with a total', () => {
    assert.deepEqual(severityTable({ vulnerabilities: vulns }), [
      'SEVERITY  COUNT  FIXABLE',
      'CRITICAL  0      0',
      'HIGH      1      1',
      'MEDIUM    0      0',
      'LOW       2      1',
      'UNKNOWN   0      0',
      'TOTAL     3      2',
    ]);
  });

  it('falls back to the summary when findings are not there', () => {
    const lines = severityTable({ summary: { critical: 1, high: 2, medium: 0, low: 0, unknown: 0, fixable: 3 } });
    assert.equal(lines[1], 'CRITICAL  1      -');
    assert.equal(lines[6], 'TOTAL     3      3');
  });

  it('lists findings worst first and the failed gate grouped by rule', () => {
    const lines = renderScan({
      vulnerabilities: vulns,
      policy: { passed: false, violations: [{ id: 'CVE-2021-23337', package: 'lodash', severity: 'HIGH', rule: 'max_high=0' }] },
    });
    const ids = lines.filter((l) => l.startsWith('CVE-')).map((l) => l.split(' ')[0]);
    assert.deepEqual(ids, ['CVE-2021-23337', 'CVE-2011-3374', 'CVE-2020-0001']);
    assert.ok(lines.includes('policy: FAILED (1 violation)'), lines.join('\n'));
    assert.ok(lines.includes('  max_high=0: CVE-2021-23337 (lodash)'));
    assert.ok(renderScan({ vulnerabilities: [], policy: { passed: true, violations: [] } }).includes('policy: PASSED'));
  });
});

describe('exit codes', () => {
  const job = (state: string, extra: object = {}) =>
    ({ action: 'build', state, result: null, error: null, ...extra }) as Parameters<typeof exitCodeForJob>[0];
  it('maps final states and gates', () => {
    assert.equal(exitCodeForJob(job('succeeded')), EXIT.OK);
    assert.equal(exitCodeForJob(job('failed', { error: { code: 'BUILD_FAILED', message: '', details: {} } })), EXIT.JOB_FAILED);
    assert.equal(exitCodeForJob(job('failed', { error: { code: 'POLICY_FAILED', message: '', details: {} } })), EXIT.POLICY);
    assert.equal(exitCodeForJob(job('cancelled')), EXIT.CANCELLED);
    assert.equal(exitCodeForJob(job('timed_out')), EXIT.CANCELLED);
    assert.equal(exitCodeForJob(job('succeeded', { action: 'scan', result: { policy: { passed: false } } })), EXIT.POLICY);
    assert.equal(exitCodeForJob(job('succeeded', { action: 'scan', result: { policy: { passed: true } } })), EXIT.OK);
    assert.equal(exitCodeForJob(job('succeeded', { action: 'verify', result: { verification: { verified: false } } })), EXIT.POLICY);
    assert.equal(exitCodeForJob(job('succeeded', { action: 'verify', result: { verification: { verified: true } } })), EXIT.OK);
  });

  it('maps HTTP answers: 4xx is a usage error, 5xx the server', () => {
    assert.deepEqual([400, 401, 404, 409, 429, 500, 503].map(exitCodeForStatus), [2, 2, 2, 2, 2, 5, 5]);
    const err = apiError(400, {
      error: {
        code: 'VALIDATION_FAILED',
        message: 'invalid body: image: required',
        details: { fields: [{ path: 'image', message: 'required' }] },
      },
    });
    assert.equal(err.message, 'error VALIDATION_FAILED: invalid body: image: required');
    assert.deepEqual(err.lines, ['  image: required']);
    assert.equal(err.exitCode, EXIT.USAGE);
    assert.equal(apiError(502, '<html>bad gateway</html>').message, 'error HTTP_502: <html>bad gateway</html>');
  });
});

describe('terminal helpers and SSE frames', () => {
  it('colours only a TTY without NO_COLOR', () => {
    assert.equal(paintFor({ isTTY: true }, {}), COLOR);
    assert.notEqual(paintFor({ isTTY: true }, { NO_COLOR: '1' }), COLOR);
    assert.notEqual(paintFor({ isTTY: false }, {}), COLOR);
  });

  it('aligns columns ignoring colour codes', () => {
    assert.deepEqual(
      table([
        [COLOR.red('HIGH'), '1'],
        ['CRITICAL', '10'],
      ]),
      [`${COLOR.red('HIGH')}      1`, 'CRITICAL  10'],
    );
  });

  it('parses SSE frames split across chunks, skipping heartbeats', async () => {
    const enc = new TextEncoder();
    const chunks = [
      ': stream open\n\n',
      'id: 1-0\nevent: state\nda',
      'ta: {"at":1,"state":"queued"}\n\n: heartbeat\n\n',
      'id: 1-1\nevent: log\ndata: {"line":"x"}\n\n',
    ];
    const events = [];
    for await (const e of parseSse(
      (async function* () {
        for (const c of chunks) yield enc.encode(c);
      })(),
    ))
      events.push(e);
    assert.deepEqual(events, [
      { id: '1-0', type: 'state', data: { at: 1, state: 'queued' } },
      { id: '1-1', type: 'log', data: { line: 'x' } },
    ]);
    assert.equal(parseFrame(': heartbeat'), undefined);
  });
});
