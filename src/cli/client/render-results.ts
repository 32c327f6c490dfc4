import type { JobError } from '../../jobs/job-types.js';
import { BuildView, warningsLine } from './render-build.js';
import { renderPolicy, renderScan, severityTable } from './render-scan.js';
import { PLAIN, formatBytes, formatSeconds, table, type Paint } from './terminal.js';

type R = Record<string, any>;

/** What a finished job of each action prints (stdout) when not --json. */
export function renderResult(action: string, result: R | null | undefined, paint: Paint = PLAIN): string[] {
  if (!result) return [];
  switch (action) {
    case 'build':
      return renderBuild(result, paint);
    case 'scan':
      return renderScan(result, paint);
    case 'inspect':
      return renderInspect(result.image_info ?? {}, paint);
    case 'optimize':
      return renderOptimize(result, paint);
    case 'push':
      return renderPushed(result.pushed ?? []);
    case 'sign':
      return renderSigned(result.signed);
    case 'verify':
      return renderVerification(result.verification ?? {}, paint);
    default:
      return [];
  }
}

export function renderBuild(result: R, paint: Paint = PLAIN): string[] {
  const build = result.build ?? {};
  const steps: R[] = build.steps ?? [];
  const tags: string[] = result.tags ?? [];
  const lines = [
    `${paint.green('built')} ${tags.length ? tags.join(', ') : '(not pushed)'}${build.digest ? ` ${build.digest}` : ''} ` +
      `in ${formatSeconds(build.duration_ms)} (${build.cache_hits ?? 0} of ${steps.length} steps cached)`,
  ];
  const stage = (s: R) =>
    `${s.name} ${s.state === 'succeeded' ? paint.green(s.state) : paint.red(s.state)} ${formatSeconds(s.duration_ms)}`;
  if (result.context)
    lines.push(`context: ${result.context.files} file${result.context.files === 1 ? '' : 's'}, ${formatBytes(result.context.bytes)}`);
  lines.push(...warningsLine(build.warnings, build.warnings_total, paint));
  if (result.stages) lines.push(`stages: ${(result.stages as R[]).map(stage).join(', ')}`);
  if (result.summary) lines.push('', ...severityTable(result, paint));
  if (result.policy) lines.push(...renderPolicy(result.policy, paint));
  if (result.signed) lines.push(...renderSigned(result.signed));
  if (Array.isArray(result.attested) && result.attested.length)
    for (const a of result.attested as R[]) lines.push(`attested ${a.platform} ${a.digest}: ${(a.types as string[]).join(', ')}`);
  else if (result.attestations?.length) lines.push(`attested: ${(result.attestations as string[]).join(', ')}`);
  if (result.pushed) lines.push(...renderPushed(result.pushed));
  return lines;
}

export function renderInspect(info: R, paint: Paint = PLAIN): string[] {
  const config: R = info.config ?? {};
  const platform = [info.os, info.architecture, info.variant].filter(Boolean).join('/');
  const layers: R[] = info.layers ?? [];
  const rows: [string, string][] = [
    ['reference', info.reference ?? '-'],
    ['digest', info.digest ?? '-'],
    ['manifest', info.manifest_digest && info.manifest_digest !== info.digest ? info.manifest_digest : ''],
    ['platform', platform],
    [
      'platforms',
      Array.isArray(info.platforms)
        ? info.platforms
            .map((p: unknown) =>
              typeof p === 'string' ? p : [(p as R).os, (p as R).architecture, (p as R).variant].filter(Boolean).join('/'),
            )
            .join(', ')
        : '',
    ],
    ['size', `${formatBytes(info.size_bytes)} in ${layers.length} layer${layers.length === 1 ? '' : 's'}`],
    ['created', info.created ?? ''],
    ['user', config.user ?? ''],
    ['entrypoint', config.entrypoint ? JSON.stringify(config.entrypoint) : ''],
    ['cmd', config.cmd ? JSON.stringify(config.cmd) : ''],
    ['workdir', config.workdir ?? ''],
    ['ports', Array.isArray(config.exposed_ports) ? config.exposed_ports.join(', ') : ''],
    ['env', Array.isArray(config.env) ? config.env.join(' ') : ''],
    [
      'labels',
      config.labels
        ? Object.entries(config.labels as R)
            .map(([k, v]) => `${k}=${String(v)}`)
            .join(' ')
        : '',
    ],
  ];
  const lines = table(rows.filter(([, v]) => v).map(([k, v]) => [paint.bold(k), v]));
  if (layers.length) {
    lines.push(
      '',
      ...table([
        ['LAYER', 'SIZE', 'CREATED BY'],
        ...layers.map((l) => [String(l.digest ?? '').slice(0, 19), formatBytes(l.size_bytes), oneLine(l.created_by ?? '', 80)]),
      ]),
    );
  }
  return lines;
}

export function renderOptimize(result: R, paint: Paint = PLAIN): string[] {
  const lines: string[] = [];
  const suggestions: R[] = result.optimization_suggestions ?? [];
  if (suggestions.length) {
    lines.push(
      ...table([
        ['SEVERITY', 'RULE', 'LINE', 'SAVES', 'TITLE'],
        ...suggestions.map((s) => [
          s.severity === 'error' ? paint.red(s.severity) : s.severity === 'warning' ? paint.yellow(s.severity) : s.severity,
          s.id,
          s.line ? String(s.line) : '-',
          s.estimated_savings_bytes ? formatBytes(s.estimated_savings_bytes) : '-',
          s.title,
        ]),
      ]),
    );
  } else if (result.optimized_dockerfile !== undefined) {
    lines.push(paint.green('no Dockerfile findings'));
  }
  const analysis: R | undefined = result.image_analysis;
  if (analysis) {
    lines.push(
      '',
      `image: ${formatBytes(analysis.size_bytes)}, ` +
        `efficiency ${typeof analysis.efficiency === 'number' ? `${(analysis.efficiency * 100).toFixed(1)}%` : '-'}, ` +
        `wasted ${formatBytes(analysis.wasted_bytes)}`,
    );
    for (const f of ((analysis.largest_files ?? []) as R[]).slice(0, 5)) lines.push(`  ${formatBytes(f.size_bytes)}  ${f.path}`);
  }
  if (Array.isArray(result.rewrite_changes))
    lines.push(
      '',
      `optimized Dockerfile: ${result.rewrite_changes.length} safe ` +
        `rewrite${result.rewrite_changes.length === 1 ? '' : 's'}${result.rewrite_changes.length ? ' (-o FILE writes it)' : ''}`,
    );
  const v: R | undefined = result.verification;
  if (v) {
    const reduction = typeof v.reduction === 'number' ? ` (-${(v.reduction * 100).toFixed(1)}%)` : '';
    const smoke = typeof v.smoke_test === 'object' ? JSON.stringify(v.smoke_test) : String(v.smoke_test);
    lines.push(
      `verified: ${formatBytes(v.original_size_bytes)} → ${formatBytes(v.optimized_size_bytes)}${reduction}` +
        `${v.smoke_test ? `, smoke test ${smoke}` : ''}` +
        `${v.kind ? ` — the ${v.kind} rewrite${v.base_image ? ` on ${v.base_image}` : ''}` : ''}`,
    );
    for (const r of (result.rewrites ?? []) as R[])
      lines.push(
        `  ${r.offered ? paint.green('offered') : 'not offered'}  ${r.kind}${r.base_image ? ` on ${r.base_image}` : ''}: ` +
          `${r.size_bytes === null ? '-' : formatBytes(r.size_bytes)}, smoke test ${r.smoke_test}${r.offered ? '' : ` (${r.reason})`}`,
      );
  }
  const t: R | undefined = result.target;
  if (t) {
    const verdict =
      t.met === null
        ? (t.note ?? 'not measured')
        : t.met
          ? paint.green('met')
          : `${paint.red('not met')}, ${formatBytes(t.gap_bytes)} over`;
    lines.push(`target ${formatBytes(t.target_bytes)}: ${verdict} (current ${formatBytes(t.current_bytes)})`);
  }
  return lines;
}

export function renderPushed(pushed: R[]): string[] {
  return pushed.map((p) => `pushed ${p.reference}@${p.digest}`);
}

export function renderSigned(signed: R | undefined): string[] {
  if (!signed) return [];
  return [
    `signed ${signed.reference} with key ${signed.key}`,
    ...((signed.platforms ?? []) as R[]).map((p) => `  and its ${p.platform} manifest ${p.digest}`),
  ];
}

export function renderVerification(v: R, paint: Paint = PLAIN): string[] {
  const lines = [
    v.verified
      ? `${paint.green('verified')} ${v.reference} with key ${v.key}`
      : `${paint.red('NOT verified')} ${v.reference ?? ''} with key ${v.key ?? '-'}: ${v.reason ?? 'no valid signature'}`,
  ];
  // An index: each platform manifest's signature and attestations (the top-level
  // attestations only summarise them).
  if (Array.isArray(v.platforms)) {
    for (const p of v.platforms as R[]) {
      const signed = p.verified ? paint.green('signed') : `${paint.red('NOT signed')}${p.reason ? ` (${oneLine(p.reason, 100)})` : ''}`;
      lines.push(`  ${p.platform} ${p.digest}: ${signed}`);
      lines.push(...attestationLines(p.attestations ?? [], '    '));
    }
    return lines;
  }
  return [...lines, ...attestationLines(v.attestations ?? [], '  ')];
}

function attestationLines(attestations: R[], indent: string): string[] {
  return attestations.map((a) => {
    // Attestations exist only after a build pipeline with scan + sign: absence is normal.
    const absent = !a.verified && /no matching attestations|none of the attestations matched/i.test(String(a.reason ?? ''));
    const status = a.verified ? 'verified' : absent ? 'none' : `not verified${a.reason ? ` (${oneLine(a.reason, 100)})` : ''}`;
    return `${indent}attestation ${a.type}: ${status}`;
  });
}

/** A failed job: the failing build step's block (as buildx ends), then `error CODE: message`. */
export function renderJobError(action: string, error: JobError | null | undefined, paint: Paint = PLAIN): string[] {
  if (!error) return [];
  const details = (error.details ?? {}) as R;
  const lines = action === 'build' && error.code === 'BUILD_FAILED' ? new BuildView(paint).failure(details) : [];
  lines.push(paint.red(`error ${error.code}: ${error.message}`));
  if (action === 'build') lines.push(...warningsLine(details.warnings, undefined, paint));
  if (Array.isArray(details.violations) && error.code === 'POLICY_FAILED' && details.policy)
    lines.push(...renderPolicy(details.policy, paint).slice(1));
  if (Array.isArray(details.failed)) for (const f of details.failed as R[]) lines.push(`  ${f.reference}: ${f.error}`);
  return lines;
}

export function renderJobList(items: R[], paint: Paint = PLAIN): string[] {
  if (!items.length) return ['no jobs'];
  return table([
    ['ID', 'ACTION', 'STATE', 'CREATED', 'SUBJECT'],
    ...items.map((j) => [j.id, j.action, stateColour(paint, j.state)(j.state), j.created_at ?? '', subject(j.request ?? {})]),
  ]);
}

/** `jobs get`: the record's head, then what its action prints. */
export function renderJob(job: R, paint: Paint = PLAIN): string[] {
  const rows = [
    ['id', job.id],
    ['action', job.action],
    ['state', stateColour(paint, job.state)(job.state)],
    ['subject', subject(job.request ?? {})],
    ['created', job.created_at ?? ''],
    ['started', job.started_at ?? ''],
    ['finished', job.finished_at ?? ''],
    ['attempts', String(job.attempts ?? '')],
  ].filter(([, v]) => v);
  const lines = table(rows.map(([k, v]) => [paint.bold(k), v!]));
  const more = job.state === 'succeeded' ? renderResult(job.action, job.result, paint) : renderJobError(job.action, job.error, paint);
  return more.length ? [...lines, '', ...more] : lines;
}

const stateColour = (paint: Paint, state: string) =>
  state === 'succeeded'
    ? paint.green
    : state === 'failed'
      ? paint.red
      : state === 'running'
        ? paint.cyan
        : state === 'queued'
          ? paint.dim
          : paint.yellow;

/** What a job is about, in one line: its image or tags. */
function subject(request: R): string {
  if (request.image) return String(request.image);
  if (Array.isArray(request.tags) && request.tags.length) return request.tags.join(', ');
  if (request.dockerfile_path) return String(request.dockerfile_path);
  return request.dockerfile_inline ? '(inline Dockerfile)' : '';
}

const oneLine = (s: string, n: number) => {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > n ? `${flat.slice(0, n - 1)}…` : flat;
};
