import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BuildProgress } from '../../src/engines/buildkit/build-progress.js';
import { BuildWarnings, MAX_WARNING_BYTES, MAX_WARNINGS, toWarning } from '../../src/engines/buildkit/build-warnings.js';
import { EventRenderer } from '../../src/cli/client/render-events.js';
import { renderJobError, renderResult } from '../../src/cli/client/render-results.js';

const b64 = (s: string) => Buffer.from(s).toString('base64');
const VERTEX = 'sha256:f5938753ef0ff4dd88a37a02c7269958c1a5f7452e1c44ffe32b7e05ced935f2';
const DOCKERFILE = 'FROM scratch as build\nCOPY a /a\nCMD echo hi\n';

/** A `warnings` entry as buildctl v0.32.2 prints it with --progress=rawjson (captured from a real build, definition cut). */
const rawWarning = (short: string, line: number, detail = 'The detail', url = 'https://docs.docker.com/go/dockerfile/rule/x/') => ({
  vertex: VERTEX,
  level: 1,
  short: b64(short),
  detail: [b64(detail)],
  url,
  sourceInfo: { filename: 'Dockerfile', data: b64(DOCKERFILE), language: 'Dockerfile' },
  range: [{ start: { line }, end: { line } }],
});
const FROM_AS = rawWarning("FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)", 1);
const JSON_ARGS = rawWarning('JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior (line 3)', 3);

describe('BuildKit warnings in the rawjson stream', () => {
  it('decodes a lint warning: rule, message, detail, url, line, step; never the Dockerfile it carries', () => {
    const progress = new BuildProgress();
    const { warnings } = progress.feed(
      JSON.stringify({ vertexes: [{ digest: VERTEX, name: '[internal] load .dockerignore' }], warnings: [FROM_AS] }),
    );
    assert.deepEqual(warnings, [
      {
        rule: 'FromAsCasing',
        message: "'as' and 'FROM' keywords' casing do not match",
        detail: 'The detail',
        url: 'https://docs.docker.com/go/dockerfile/rule/x/',
        line: 1,
        step_id: VERTEX,
      },
    ]);
    assert.ok(!JSON.stringify(progress.warnings()).includes('scratch'), 'sourceInfo.data is not kept');
  });

  it('reports an identical warning once, whatever vertex sent it, and keeps them in order', () => {
    const progress = new BuildProgress();
    assert.equal(progress.feed(JSON.stringify({ warnings: [FROM_AS] })).warnings.length, 1);
    assert.equal(
      progress.feed(JSON.stringify({ warnings: [FROM_AS, { ...FROM_AS, vertex: 'sha256:' + '1'.repeat(64) }] })).warnings.length,
      0,
    );
    assert.equal(progress.feed(JSON.stringify({ warnings: [JSON_ARGS, FROM_AS] })).warnings.length, 1);
    assert.deepEqual(
      progress.warnings().warnings.map((w) => [w.rule, w.line]),
      [
        ['FromAsCasing', 1],
        ['JSONArgsRecommended', 3],
      ],
    );
    assert.equal(progress.warnings().warnings_total, undefined, 'no total unless some were left out');
  });

  it('keeps at most MAX_WARNINGS, counting the rest, and clips long texts at a character boundary', () => {
    const warned = new BuildWarnings();
    const many = Array.from({ length: MAX_WARNINGS + 50 }, (_, i) =>
      rawWarning(`UndefinedVar: Usage of undefined variable '$V${i}' (line ${i + 1})`, i + 1),
    );
    const emitted = warned.add(many);
    assert.equal(emitted.length, MAX_WARNINGS);
    assert.equal(warned.add([rawWarning('UndefinedVar: another (line 1)', 1)]).length, 0, 'nothing new once full');
    const summary = warned.summary();
    assert.equal(summary.warnings.length, MAX_WARNINGS);
    assert.equal(summary.warnings_total, MAX_WARNINGS + 51);

    const long = toWarning(rawWarning(`Rule: ${'é'.repeat(5000)}`, 1, 'd'.repeat(10_000), `https://x/${'a'.repeat(600)}`))!;
    assert.ok(Buffer.byteLength(long.message) <= MAX_WARNING_BYTES, String(Buffer.byteLength(long.message)));
    assert.ok(long.message.endsWith('…') && !long.message.includes('\uFFFD'));
    assert.ok(Buffer.byteLength(long.detail!) <= MAX_WARNING_BYTES);
    assert.equal(long.url, undefined, 'an over-long url is dropped');
  });

  it('strips terminal escapes and control characters; a warning without a rule keeps its whole text', () => {
    const w = toWarning({
      short: b64('bad \u001b[31mred\u001b[0m\r\nnext'),
      detail: [b64('a\u0007b'), b64('c')],
      url: 'javascript:alert(1)',
    })!;
    assert.deepEqual(w, { message: 'bad [31mred[0m next', detail: 'ab\nc' });
    assert.equal(toWarning({ short: b64('Rule: x (line 7)') })!.message, 'x', 'the line suffix goes with a rule');
  });

  it('never throws on malformed input: not JSON, wrong types, bad base64', () => {
    const progress = new BuildProgress();
    const lines = [
      'not json',
      'null',
      '5',
      '"text"',
      '[]',
      '{"warnings": 5}',
      '{"warnings": "x"}',
      '{"warnings": [null, 1, "s", [], {}]}',
      '{"warnings": [{"short": 5}, {"short": ""}, {"short": "!!!notbase64"}, {"short": "QQ==", "detail": [5, null], "range": [null]}]}',
      '{"warnings": [{"short": "QQ==", "range": "x", "url": 5, "vertex": 5}]}',
      '{"vertexes": 5, "logs": {"a": 1}}',
      '{"vertexes": [null, 1, {"digest": 5}], "logs": [null, {"vertex": 1, "data": 5}, {"vertex": "v"}]}',
    ];
    for (const line of lines) assert.doesNotThrow(() => progress.feed(line), line);
    assert.doesNotThrow(() => progress.flush());
    // "QQ==" is "A": a warning without a rule, nothing else valid.
    const kept = progress.warnings().warnings;
    for (const w of kept) assert.ok(typeof w.message === 'string' && w.message.length > 0, JSON.stringify(w));
    assert.deepEqual(
      kept.filter((w) => w.message === 'A'),
      [{ message: 'A' }],
      'the valid parts of a half-valid warning, once',
    );
    assert.deepEqual(progress.summary().steps, []);
  });
});

describe('CLI: BuildKit warnings', () => {
  it('prints a warning event and lists the warnings under a build summary and a failed build', () => {
    const r = new EventRenderer();
    const data = { at: 1, rule: 'FromAsCasing', message: "'as' and 'FROM' keywords' casing do not match", line: 1 };
    assert.deepEqual(r.render({ type: 'warning', data }), [
      "warning: FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line 1)",
    ]);
    const warnings = [
      { rule: 'FromAsCasing', message: 'm', line: 1 },
      { rule: 'JSONArgsRecommended', message: 'm', line: 3 },
    ];
    const lines = renderResult('build', { tags: [], build: { duration_ms: 1, steps: [], cache_hits: 0, warnings, warnings_total: 5 } });
    assert.equal(lines[1], '5 BuildKit warnings: FromAsCasing (line 1), JSONArgsRecommended (line 3), … 3 more');
    assert.equal(renderResult('build', { tags: [], build: { duration_ms: 1, steps: [], cache_hits: 0, warnings: [] } }).length, 1);
    const failed = renderJobError('build', {
      code: 'PLATFORM_MISMATCH',
      message: 'x',
      details: { warnings: [{ rule: 'InvalidBaseImagePlatform', message: 'm', line: 1 }] },
    });
    assert.deepEqual(failed, ['error PLATFORM_MISMATCH: x', '1 BuildKit warning: InvalidBaseImagePlatform (line 1)']);
  });
});

describe('the failed step of a build', () => {
  const V2 = VERTEX.replace('f5', 'a1');
  it('is never the cache import that found nothing: BuildKit goes on without it', () => {
    const progress = new BuildProgress();
    progress.feed(
      JSON.stringify({
        vertexes: [
          { digest: VERTEX, name: 'importing cache manifest from 127.0.0.1:5000/team/app:buildcache', error: 'not found' },
          { digest: V2, name: '[2/2] RUN false', error: 'process "/bin/sh -c false" did not complete successfully: exit code: 1' },
        ],
      }),
    );
    assert.equal(progress.failure()?.step, '[2/2] RUN false');
    const alone = new BuildProgress();
    alone.feed(
      JSON.stringify({ vertexes: [{ digest: VERTEX, name: 'importing cache manifest from r/x:buildcache', error: 'not found' }] }),
    );
    assert.equal(alone.failure(), undefined, "buildctl's own last line says why instead");
  });
});
