import type { JobRecord } from '../jobs/job-types.js';

export const SEVERITIES = ['critical', 'high', 'medium', 'low', 'unknown'] as const;
export type Severity = (typeof SEVERITIES)[number];

export interface LayerView {
  digest: string;
  size_bytes: number;
  created_by: string | null;
}

/**
 * What the job page shows: the record's header fields and the two charts' data. The
 * charts are computed here, not in the browser, so the page never receives (and never
 * has to render) the full result with every vulnerability.
 */
export interface JobView {
  id: string;
  action: string;
  tenant: string;
  state: string;
  image: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  error: { code: string; message: string } | null;
  /** Vulnerability counts by severity: scans and builds with a scan stage. */
  severities: Record<Severity, number> | null;
  /** How many of those have a fixed version. */
  fixable: number | null;
  /** Layers of the image the job looked at (inspect, scan, build with push, optimize of an image). */
  layers: LayerView[] | null;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const count = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);

export function toJobView(job: JobRecord): JobView {
  const request = job.request as unknown as Record<string, unknown>;
  const tags = Array.isArray(request.tags) ? request.tags : [];
  const image = typeof request.image === 'string' ? request.image : typeof tags[0] === 'string' ? tags[0] : null;
  return {
    id: job.id,
    action: job.action,
    tenant: job.tenant,
    state: job.state,
    image,
    created_at: job.created_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
    error: job.error ? { code: job.error.code, message: job.error.message } : null,
    severities: severitiesOf(job.result),
    fixable: isObject(job.result) && isObject(job.result.summary) ? count(job.result.summary.fixable) : null,
    layers: layersOf(job.result),
  };
}

function severitiesOf(result: unknown): Record<Severity, number> | null {
  if (!isObject(result) || !isObject(result.summary)) return null;
  const summary = result.summary;
  return Object.fromEntries(SEVERITIES.map((s) => [s, count(summary[s])])) as Record<Severity, number>;
}

function layersOf(result: unknown): LayerView[] | null {
  if (!isObject(result) || !isObject(result.image_info) || !Array.isArray(result.image_info.layers)) return null;
  return result.image_info.layers.filter(isObject).map((l) => ({
    digest: typeof l.digest === 'string' ? l.digest : '',
    size_bytes: count(l.size_bytes),
    created_by: typeof l.created_by === 'string' ? l.created_by : null,
  }));
}
