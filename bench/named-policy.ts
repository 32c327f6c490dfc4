// What a named policy costs over today's gate, on one large image: evaluateNamedPolicy
// (the pure part of the future GET /v1/images/{digest}/verdict) beside evaluatePolicy
// (the baseline: the same limits and allow-list, nothing else) on the same findings, in
// the same run. Inputs: 2 000 findings, 3 000 packages, 100 denied packages with ranges.
import { performance } from 'node:perf_hooks';
import { evaluatePolicy } from '../src/engines/trivy/scan-policy.js';
import type { Vulnerability } from '../src/engines/trivy/trivy-report.js';
import { evaluateNamedPolicy, type PolicyFinding } from '../src/policies/evaluate-named-policy.js';
import type { NamedPolicyRules } from '../src/policies/policy.schema.js';
import { fmt, percentile } from './support.js';
import { finding } from '../test/support/findings.js';

const ROUNDS = Number(process.env.ROUNDS ?? 2000);
const SEVERITIES: Vulnerability['severity'][] = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN'];
const now = new Date();

const packages = Array.from({ length: 3000 }, (_, i) => ({ name: `pkg-${i}`, version: `${i % 7}.${i % 13}.${i % 5}-${i % 3}+deb12u1` }));
const findings: PolicyFinding[] = Array.from({ length: 2000 }, (_, i) => ({
  ...finding(`CVE-2024-${10000 + i}`, `pkg-${i % 3000}`, packages[i % 3000]!.version, SEVERITIES[i % 5]!, i % 2 ? `${i}.0.0` : null),
  published_date: new Date(now.getTime() - (i % 60) * 86_400_000).toISOString(),
}));
const gate = { max_critical: 0, max_high: 10, allow: findings.slice(0, 50).map((f) => ({ id: f.id, reason: 'bench' })) };
const rules: NamedPolicyRules = {
  ...gate,
  only_fixable: true,
  fix_grace_days: 30,
  max_scan_age: '7d',
  deny_packages: Array.from({ length: 100 }, (_, i) => ({ name: `pkg-${i * 29}`, versions: i % 2 ? '>=2.0 <5.1.2 || 6.0.0' : undefined })),
};
const snapshot = { name: 'bench', version: 1, updated_at: now.toISOString(), rules };

function time(run: () => unknown): number[] {
  for (let i = 0; i < 50; i++) run(); // warm-up
  const out: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = performance.now();
    run();
    out.push(performance.now() - t);
  }
  return out;
}

const baseline = time(() => evaluatePolicy(findings, gate, now));
const named = time(() => evaluateNamedPolicy(snapshot, { findings, packages, scannedAt: now }, now));
const line = (label: string, ms: number[]) =>
  `${label.padEnd(38)} p50 ${fmt(percentile(ms, 50), 3)} ms  p99 ${fmt(percentile(ms, 99), 3)} ms`;
console.log(`named policy evaluation, ${findings.length} findings, ${packages.length} packages, ${ROUNDS} rounds`);
console.log(line('baseline: evaluatePolicy', baseline));
console.log(line('evaluateNamedPolicy (all rules)', named));
