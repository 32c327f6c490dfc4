import { basename } from 'node:path';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { EventLoopMonitor, eventLoopDelayHistogram } from './event-loop.js';

/**
 * The process's Prometheus metrics (prom-client). One registry per process: `serve`
 * exposes everything at /metrics; split deployments scrape the api's /metrics and
 * each worker's STEVEDORE_METRICS_PORT. Labels are bounded sets (actions, states,
 * tool names, route templates) — never tenants, ids or references.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'stevedore_process_' });

export const jobsTotal = new Counter({
  name: 'stevedore_jobs_total',
  help: 'Job state changes by action and the state entered (queued, running, succeeded, failed, cancelled, timed_out).',
  labelNames: ['action', 'state'] as const,
  registers: [registry],
});

export const jobDuration = new Histogram({
  name: 'stevedore_job_duration_seconds',
  help: 'Time from running to a terminal state, by action and final state.',
  labelNames: ['action', 'state'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
  registers: [registry],
});

export const queueDepth = new Gauge({
  name: 'stevedore_queue_depth',
  help: 'Jobs in each BullMQ queue by state (waiting includes prioritized), read from Redis at scrape time.',
  labelNames: ['queue', 'state'] as const,
  registers: [registry],
});

export const toolDuration = new Histogram({
  name: 'stevedore_tool_duration_seconds',
  help: 'External tool runs (buildctl, trivy, cosign, …) by tool and outcome (ok, exit, timeout, aborted, spawn).',
  labelNames: ['tool', 'outcome'] as const,
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600],
  registers: [registry],
});

export const webhookDeliveries = new Counter({
  name: 'stevedore_webhook_deliveries_total',
  help: 'Webhook delivery attempts by outcome (success, http_error, network_error, timeout, refused).',
  labelNames: ['outcome'] as const,
  registers: [registry],
});

export const httpRequests = new Histogram({
  name: 'stevedore_http_request_duration_seconds',
  help: 'REST requests by method, route template and status code.',
  labelNames: ['method', 'route', 'status'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
  registers: [registry],
});

/**
 * `stevedore_event_loop_delay_seconds`, watched from the moment metrics are loaded (every
 * role loads them), so /metrics and /readyz see the whole life of the process.
 */
export const eventLoop = new EventLoopMonitor(eventLoopDelayHistogram(registry)).start();

/** Tools are named by their binary, e.g. /var/cache/stevedore/bin/trivy → trivy. */
export function observeTool(command: string, outcome: string, seconds: number): void {
  toolDuration.observe({ tool: basename(command), outcome }, seconds);
}

/** Reads queue depths on every scrape (set by whoever owns the queues). */
export function setQueueDepthSource(read: () => Promise<Record<string, Record<string, number>>>): void {
  queueDepthSource = read;
}
let queueDepthSource: (() => Promise<Record<string, Record<string, number>>>) | undefined;

/** The text exposition, with queue depths fresh from Redis (skipped when Redis is down). */
export async function renderMetrics(): Promise<string> {
  if (queueDepthSource) {
    const counts = await queueDepthSource().catch(() => undefined);
    if (counts)
      for (const [queue, states] of Object.entries(counts))
        for (const [state, n] of Object.entries(states)) queueDepth.set({ queue, state }, n);
  }
  return registry.metrics();
}

export const METRICS_CONTENT_TYPE = registry.contentType;
