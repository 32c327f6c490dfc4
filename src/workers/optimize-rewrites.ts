import type { SmokeRun } from '../engines/buildkit/smoke-run.js';
import type { RegistryResolver } from '../engines/registry/registry-resolver.js';
import { planStageSplits, type StageSplitPlan } from './optimize-stage-split.js';
import { buildForVerify, runInImage, type Built, type OptimizeVerification, type VerifyDeps } from './optimize-verify.js';
import { compareSmokeRuns, describeRun } from './smoke-compare.js';
import type { VulnerabilityCounter } from './optimize-vulns.js';

/**
 * Verify with every rewrite stevedore can write: the safe (mechanical) one and a
 * multi-stage one per runtime base. Each is built, measured and run — its default
 * command and the caller's extra commands, each compared with the original's — and a
 * multi-stage rewrite is verified only when all of that passed. The smallest verified
 * rewrite is offered; everything tried is reported, with why it was or was not offered.
 */

export interface CheckOutcome {
  command: string[];
  passed: boolean;
  reason: string;
}

export interface RewriteOutcome {
  kind: 'safe' | 'multi-stage';
  base_image: string | null;
  dockerfile: string;
  size_bytes: number | null;
  reduction: number | null;
  smoke_test: 'passed' | 'failed' | 'skipped';
  checks: CheckOutcome[];
  /** Built, and (multi-stage) its smoke test and every extra command passed. */
  verified: boolean;
  /** The one returned as optimized_dockerfile: the smallest verified rewrite. */
  offered: boolean;
  reason: string;
  /** multi-stage only: what the runtime stage installs and copies. */
  packages?: string[];
  copies?: string[];
}

export interface RewritesVerdict {
  verification: OptimizeVerification & {
    kind: 'safe' | 'multi-stage';
    base_image: string | null;
    checks: CheckOutcome[];
    verify_ms: number;
    original_build_ms: number;
  };
  best: RewriteOutcome;
  rewrites: RewriteOutcome[];
  base_images: { ref: string; size_bytes: number; smoke_test: 'passed' | 'failed' | 'skipped'; vulnerabilities: number | null }[];
  stage_split: {
    skipped: { base: string; reason: string }[];
    produced: { files: number; bytes: number; paths: string[] };
    program: string | null;
  };
}

export type RewriteDeps = VerifyDeps & { registries: RegistryResolver; countVulnerabilities?: VulnerabilityCounter };

const ratio = (a: number, b: number) => (a ? Math.round((1 - b / a) * 1000) / 1000 : 0);

export async function verifyRewrites(
  job: { id: string; tenant: string },
  original: string,
  safe: string,
  contextDir: string | undefined,
  deps: RewriteDeps,
  signal: AbortSignal,
  options: { platform?: string; commands?: string[][]; progress?: (message: string) => Promise<void> } = {},
): Promise<RewritesVerdict> {
  const started = Date.now();
  const progress = options.progress ?? (async () => undefined);
  const commands = options.commands ?? [];
  const build = (name: string, text: string) => buildForVerify(job, name, text, contextDir, deps, signal, options.platform);
  const a = await build('original', original);
  const s = await build('optimized', safe);
  await progress('planning multi-stage rewrites from the built image');
  const split = await planStageSplits({ inspector: deps.inspector, registries: deps.registries }, a.ref, original, signal).catch(
    (err: unknown) => {
      if (signal.aborted) throw err;
      const reason = `could not read the built image: ${(err as Error).message.split('\n')[0]}`;
      return {
        plans: [] as StageSplitPlan[],
        skipped: [{ base: '*', reason }],
        produced: { files: 0, bytes: 0, paths: [] },
        program: null,
      };
    },
  );
  const built: { plan?: StageSplitPlan; image?: Built; error?: string }[] = [{ image: s }];
  for (const [i, plan] of split.plans.entries()) {
    await progress(`building the multi-stage rewrite on ${plan.base}`);
    built.push(
      await build(`stage-split-${i}`, plan.dockerfile).then(
        (image) => ({ plan, image }),
        (err: unknown) => {
          if (signal.aborted) throw err;
          return { plan, error: (err as Error).message.split('\n')[0]! };
        },
      ),
    );
  }

  // The original's runs are the reference: run once each, compared with every rewrite's.
  const runtime = deps.smokeRuntime ?? 'buildkit';
  const runs = runtime !== 'none' && a.argv.length;
  await progress('running the original and each rewrite');
  const runSafely = (image: Built, argv: string[] | undefined, name: string): Promise<SmokeRun> =>
    runInImage(image, argv, name, job, deps, signal).catch((err: unknown) => {
      if (signal.aborted) throw err;
      return {
        exit_code: null,
        stdout: '',
        stderr: '',
        timed_out: false,
        stdout_truncated: false,
        stderr_truncated: false,
        error: (err as Error).message.split('\n')[0]!,
      };
    });
  const reference = runs ? await runSafely(a, undefined, 'original') : undefined;
  const referenceChecks: SmokeRun[] = [];
  for (const [i, argv] of commands.entries()) referenceChecks.push(await runSafely(a, argv, `original-check-${i}`));

  const details: Record<string, unknown> = { original: a.ref, smoke_runtime: runtime };
  const outcomes: RewriteOutcome[] = [];
  for (const [i, b] of built.entries()) {
    const kind = b.plan ? 'multi-stage' : 'safe';
    const outcome: RewriteOutcome = {
      kind,
      base_image: b.plan?.base ?? null,
      dockerfile: b.plan?.dockerfile ?? safe,
      size_bytes: b.image?.size ?? null,
      reduction: b.image ? ratio(a.size, b.image.size) : null,
      smoke_test: 'skipped',
      checks: [],
      verified: false,
      offered: false,
      reason: '',
      ...(b.plan ? { packages: b.plan.packages, copies: b.plan.copies } : {}),
    };
    outcomes.push(outcome);
    if (!b.image) {
      outcome.reason = `the rewrite did not build: ${b.error}`;
      continue;
    }
    if (reference) {
      const run = await runSafely(b.image, undefined, `rewrite-${i}`);
      const verdict = compareSmokeRuns(reference, run);
      outcome.smoke_test = verdict.smoke_test;
      outcome.reason = verdict.reason;
      if (i === 0)
        Object.assign(details, { optimized: b.image.ref, original_run: describeRun(reference), optimized_run: describeRun(run) });
      else details[`stage_split_${i}_run`] = describeRun(run);
    }
    for (const [k, argv] of commands.entries()) {
      const verdict = compareSmokeRuns(referenceChecks[k]!, await runSafely(b.image, argv, `rewrite-${i}-check-${k}`));
      outcome.checks.push({ command: argv, passed: verdict.smoke_test === 'passed', reason: verdict.reason });
    }
    const checksPass = outcome.checks.every((c) => c.passed);
    if (kind === 'safe') {
      outcome.verified = true;
      outcome.reason ||= runs ? outcome.reason : 'smoke tests are off or the image has no command';
    } else if (outcome.smoke_test !== 'passed')
      outcome.reason = outcome.smoke_test === 'skipped' ? 'not smoke-tested, so not offered' : `smoke test failed: ${outcome.reason}`;
    else if (!checksPass) outcome.reason = `an extra check failed: ${outcome.checks.find((c) => !c.passed)!.reason}`;
    else if (b.image.size >= s.size) outcome.reason = 'not smaller than the safe rewrite';
    else outcome.verified = true;
  }
  // Exposure of each base that passed: counted only with a vulnerability DB.
  const vulnerabilities = new Map<RewriteOutcome, number | null>();
  for (const [i, o] of outcomes.entries())
    if (o.kind === 'multi-stage' && o.smoke_test === 'passed' && deps.countVulnerabilities)
      vulnerabilities.set(o, await deps.countVulnerabilities(built[i]!.image!.ref, options.platform, signal));
  const best = outcomes.filter((o) => o.verified).sort((x, y) => x.size_bytes! - y.size_bytes!)[0]!;
  best.offered = true;
  for (const o of outcomes)
    if (o.verified && o !== best)
      o.reason = `verified, but the ${best.kind} rewrite${best.base_image ? ` on ${best.base_image}` : ''} is smaller`;
  const bestImage = built[outcomes.indexOf(best)]!.image!;
  return {
    verification: {
      original_size_bytes: a.size,
      optimized_size_bytes: bestImage.size,
      reduction: ratio(a.size, bestImage.size),
      smoke_test: best.smoke_test,
      kind: best.kind,
      base_image: best.base_image,
      checks: best.checks,
      verify_ms: Date.now() - started,
      original_build_ms: a.build_ms,
      details: { ...details, smoke_reason: best.reason, best: bestImage.ref },
    },
    best,
    rewrites: outcomes,
    base_images: outcomes
      .filter((o) => o.kind === 'multi-stage' && o.size_bytes !== null)
      .map((o) => ({
        ref: o.base_image!,
        size_bytes: o.size_bytes!,
        smoke_test: o.smoke_test,
        vulnerabilities: vulnerabilities.get(o) ?? null,
      }))
      .sort((x, y) => Number(y.smoke_test === 'passed') - Number(x.smoke_test === 'passed') || x.size_bytes - y.size_bytes),
    stage_split: { skipped: split.skipped, produced: split.produced, program: split.program },
  };
}

export interface Change {
  rule: string;
  detail: string;
  saved_bytes: number | null;
}

/** The changes of the rewrite offered, each with why, and measured bytes where a build measured them. */
export function describeChanges(verdict: RewritesVerdict, safeChanges: { line: number; change: string }[] = []): Change[] {
  const { best, verification: v } = verdict;
  const saved = v.original_size_bytes - v.optimized_size_bytes;
  if (best.kind === 'safe')
    return [
      ...safeChanges.map((c) => ({ rule: 'safe-rewrite', detail: `line ${c.line}: ${c.change}`, saved_bytes: null })),
      { rule: 'safe-rewrite', detail: 'the safe rewrite as a whole, built and measured', saved_bytes: saved },
    ];
  const produced = verdict.stage_split.produced;
  const others = verdict.base_images.filter((b) => b.ref !== best.base_image && b.smoke_test === 'passed');
  return [
    {
      rule: 'multi-stage',
      detail:
        `the original stays as the build stage (its compilers and build-only packages stay there); the runtime stage ` +
        `starts FROM ${best.base_image}, ${best.packages?.length ? `installs ${best.packages.join(', ')}` : 'installs no package'} ` +
        `and copies the ${produced.files} files the build produced (${best.copies?.length ?? 0} COPY lines)`,
      saved_bytes: saved,
    },
    {
      rule: 'runtime-base',
      detail: others.length
        ? `${best.base_image} is the smallest base whose image passed the smoke test ` +
          `(${others.map((o) => `${o.ref}: ${o.size_bytes} bytes`).join(', ')})`
        : `${best.base_image}: the only base whose image passed the smoke test`,
      saved_bytes: others.length ? Math.min(...others.map((o) => o.size_bytes)) - v.optimized_size_bytes : null,
    },
  ];
}
