import { buildModel } from './model.js';
import { RULES } from './rules/index.js';
import { RuleContext } from './rules/rule.js';
import type { AnalyzeOptions, Suggestion } from './types.js';

/**
 * Static analysis of a Dockerfile for the optimize action: parses it (no network, no
 * child processes) and runs every rule. Suppressed by, in order of scope:
 * `options.ignore`; `# stevedore-ignore <id>[,<id>]` before the first FROM (whole file);
 * the same comment directly above an instruction (that instruction only).
 */
export function analyzeDockerfile(text: string, options: AnalyzeOptions = {}): Suggestion[] {
  const model = buildModel(text);
  const ctx = new RuleContext(model, options);
  const globalIgnores = new Set([...(options.ignore ?? []), ...model.fileIgnores]);
  const out: Suggestion[] = [];
  const seen = new Set<string>();
  for (const rule of RULES) {
    if (globalIgnores.has(rule.id)) continue;
    for (const f of rule.check(ctx)) {
      if (f.instr?.ignores.has(rule.id)) continue;
      const line = f.instr?.line ?? null;
      const key = `${rule.id}@${line}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push({
        id: rule.id,
        refs: [...rule.refs],
        severity: rule.severity,
        title: f.title ?? rule.title,
        line,
        detail: f.detail,
        fix: f.fix,
        estimated_savings_bytes: f.savings ?? null,
      });
    }
  }
  // Whole-build findings first, then by line; the rule order breaks ties.
  return out
    .map((s, i) => ({ s, i }))
    .sort((a, b) => (a.s.line ?? 0) - (b.s.line ?? 0) || a.i - b.i)
    .map(({ s }) => s);
}

/** The rule catalogue, for documentation and for validating `ignore` lists. */
export function listRules(): { id: string; refs: string[]; severity: Suggestion['severity']; title: string }[] {
  return RULES.map((r) => ({ id: r.id, refs: [...r.refs], severity: r.severity, title: r.title }));
}
