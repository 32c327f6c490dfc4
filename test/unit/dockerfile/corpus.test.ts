import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeDockerfile, listRules } from '../../../src/analysis/dockerfile/index.js';
import { loadCorpus, precision, recall, type Score } from './corpus.js';

/**
 * Precision and recall of the analyzer over the corpus, per rule and overall, counted
 * per (file, rule id). Strict definition:
 * - true positive: an id in the file's `expect` list that is reported;
 * - false negative: an id in `expect` that is not reported;
 * - false positive: a reported error/warning id that is not in `expect` (the list is the
 *   complete set of non-info findings), or a reported info id listed in `expect-not`.
 */
const corpus = loadCorpus();
const rules = listRules();
const severity = new Map(rules.map((r) => [r.id, r.severity]));
const scores = new Map<string, Score>(rules.map((r) => [r.id, { tp: 0, fp: 0, fn: 0 }]));
const mismatches: string[] = [];

for (const c of corpus) {
  const reported = new Set(analyzeDockerfile(c.text, { dockerignore: c.dockerignore, ignore: c.ignore }).map((s) => s.id));
  for (const id of c.expect) {
    if (reported.has(id)) scores.get(id)!.tp++;
    else {
      scores.get(id)!.fn++;
      mismatches.push(`${c.name}: missed ${id}`);
    }
  }
  for (const id of reported) {
    if (c.expect.has(id)) continue;
    if (severity.get(id) !== 'info' || c.expectNot.has(id)) {
      scores.get(id)!.fp++;
      mismatches.push(`${c.name}: unexpected ${id}`);
    }
  }
}

const fmt = (v: number | null) => (v === null ? '   -' : v.toFixed(2));
const total: Score = { tp: 0, fp: 0, fn: 0 };
const rows = [...scores].map(([id, s]) => {
  total.tp += s.tp;
  total.fp += s.fp;
  total.fn += s.fn;
  return (
    `${id.padEnd(28)} ${String(s.tp).padStart(3)} ${String(s.fp).padStart(3)} ${String(s.fn).padStart(3)}  ` +
    `${fmt(precision(s))}  ${fmt(recall(s))}`
  );
});
console.log(
  [
    `${'rule'.padEnd(28)}  tp  fp  fn  prec  recall`,
    ...rows,
    `${'OVERALL'.padEnd(28)} ${String(total.tp).padStart(3)} ${String(total.fp).padStart(3)} ${String(total.fn).padStart(3)}  ` +
      `${fmt(precision(total))}  ${fmt(recall(total))}`,
  ].join('\n'),
);
if (mismatches.length > 0) console.log(`mismatches:\n  ${mismatches.join('\n  ')}`);

describe('Dockerfile corpus', () => {
  it('has at least 40 Dockerfiles', () => assert.ok(corpus.length >= 40, `${corpus.length} files`));

  it('names only known rule ids in its headers', () => {
    for (const c of corpus)
      for (const id of [...c.expect, ...c.expectNot, ...c.ignore]) assert.ok(severity.has(id), `${c.name}: unknown rule id ${id}`);
  });

  it('covers every rule positively and negatively', () => {
    for (const { id } of rules) {
      assert.ok(
        corpus.some((c) => c.expect.has(id)),
        `no file expects ${id}`,
      );
      assert.ok(
        corpus.some((c) => c.expectNot.has(id)),
        `no file lists ${id} under expect-not`,
      );
    }
  });

  it('reaches precision and recall of at least 0.9 overall', () => {
    assert.ok(precision(total)! >= 0.9, `overall precision ${precision(total)}`);
    assert.ok(recall(total)! >= 0.9, `overall recall ${recall(total)}`);
  });

  it('reaches precision and recall of at least 0.9 for every rule with support', () => {
    for (const [id, s] of scores) {
      const p = precision(s);
      const r = recall(s);
      assert.ok(p === null || p >= 0.9, `${id}: precision ${p}`);
      assert.ok(r === null || r >= 0.9, `${id}: recall ${r}`);
    }
  });
});
