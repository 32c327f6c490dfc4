import { DelayedError, UnrecoverableError, WaitingError, type Job } from 'bullmq';
import type { Logger } from '@nestjs/common';
import type { FairScheduler } from '../jobs/fair-scheduler.js';
import type { JobNotifier } from '../jobs/job-notifier.js';
import type { JobStore } from '../jobs/job-store.js';
import type { QueuePayload } from '../jobs/queues.js';
import type { Action } from '../jobs/actions.js';
import { JobFailure } from '../jobs/job-failure.js';
import { emptyResult, isTerminal, type JobError, type JobRecord } from '../jobs/job-types.js';
import type { ActionProcessor, JobContext } from './processor.js';
import { SecretMasker } from './secret-masker.js';

const nowIso = () => new Date().toISOString();

/** How often a job whose worker died is run again before it fails with WORKER_LOST. */
export const RECOVERY_RUNS = 1;
/**
 * BullMQ's own limit must stay above ours: past it BullMQ fails the job inside Redis
 * without running our code, which would leave the record `running`.
 */
export const MAX_STALLED_COUNT = RECOVERY_RUNS + 2;
/** A job over its tenant's running cap waits this long (with jitter) before it is tried again. */
const TENANT_CAP_RETRY_MS = 1_000;
/**
 * How long aborted work may take to stop before its job is handed back or finished:
 * above the process runner's SIGTERM → SIGKILL grace (3 s), so a child that ignores
 * SIGTERM is killed first.
 */
const WIND_DOWN_MS = 5_000;

export interface RunnerDeps {
  store: JobStore;
  fair: FairScheduler;
  notifier: JobNotifier;
  logger: Logger;
  /** Aborts when the worker shuts down past its grace time: running jobs are handed back. */
  shutdown: AbortSignal;
  /** Told of every finished job (the image catalogue); never fails the job (see recordFinished). */
  recorder?: { record(job: JobRecord): Promise<void> };
}

/**
 * The BullMQ processor around every action: queued → running (after the tenant's
 * running cap), the time limit, cancel, recovery of jobs whose worker died, hand-back on
 * shutdown, and the terminal state with its result or error. Retries stay BullMQ's: a
 * retryable failure with attempts left goes back to `queued` and is thrown for BullMQ to
 * back off.
 */
export function createJobRunner<A extends Action>(processor: ActionProcessor<A>, deps: RunnerDeps) {
  const { store, fair, notifier, logger } = deps;
  return async (bullJob: Job<QueuePayload>, token?: string, bullSignal?: AbortSignal): Promise<void> => {
    const id = bullJob.data.jobId;
    const found = (await store.get(id)) as JobRecord<A> | undefined;
    if (!found || isTerminal(found.state)) return; // cancelled or expired while queued
    // BullMQ hands a job out again when the worker holding it stopped renewing its lock
    // (killed, or lost Redis for too long): its record still says `running`.
    const recovered = found.state === 'running';
    if (recovered && bullJob.stalledCounter > RECOVERY_RUNS) {
      await finishAndNotify(deps, found, 'failed', {
        code: 'WORKER_LOST',
        message: `the worker running this job stopped ${bullJob.stalledCounter} times; not retried again`,
        details: { runs: bullJob.stalledCounter },
      });
      await fair.release(found.tenant, id);
      throw new UnrecoverableError('worker lost');
    }
    if (!(await fair.acquire(found.action, found.tenant, id, bullJob.opts.priority ?? 0))) {
      await bullJob.moveToDelayed(Date.now() + TENANT_CAP_RETRY_MS * (0.5 + Math.random()), token);
      throw new DelayedError();
    }
    const attempt = bullJob.attemptsMade + 1 + bullJob.stalledCounter;
    const started = await store.transition(
      id,
      recovered ? ['running'] : ['queued'],
      'running',
      { started_at: nowIso(), attempts: attempt },
      recovered ? { attempt, recovered: true, reason: 'the previous worker stopped' } : { attempt },
    );
    if (!started?.applied) return void (await fair.release(found.tenant, id));
    const job = ((await store.get(id)) ?? found) as JobRecord<A>;

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort('timeout'), job.timeout_seconds * 1000);
    const onBullAbort = () => controller.abort('cancelled');
    const onShutdown = () => controller.abort('shutdown');
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    deps.shutdown.addEventListener('abort', onShutdown, { once: true });
    if (job.cancel_requested) controller.abort('cancelled');
    if (deps.shutdown.aborted) controller.abort('shutdown');

    // Everything this job writes from here on passes through its masker.
    const masker = new SecretMasker();
    const ctx: JobContext<A> = {
      job,
      signal: controller.signal,
      progress: async (message, extra = {}) => void (await store.appendEvent(id, 'progress', masker.maskDeep({ message, ...extra }))),
      log: async (line, stream = 'stdout', fields = {}) =>
        void (await store.appendEvent(id, 'log', masker.maskDeep({ ...fields, stream, line }))),
      emit: async (type, data) => void (await store.appendEvent(id, type, masker.maskDeep(data))),
      maskSecrets: (values) => masker.add(values),
    };
    let work: Promise<unknown> | undefined;
    try {
      controller.signal.throwIfAborted();
      const processing = processor.process(ctx);
      work = processing;
      const result = masker.maskDeep({ ...emptyResult(), ...(await abortable(processing, controller.signal)) });
      await store.appendEvent(id, 'result', { result });
      const finished_at = nowIso();
      await store.transition(id, ['running'], 'succeeded', { result, finished_at });
      await notifier.finished(id);
      await recordFinished(deps, { ...job, state: 'succeeded', result, error: null, finished_at });
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      // The work was told to stop (its processes signalled): let it wind down before the
      // job is handed back or finished, so no buildctl outlives its worker or runs on
      // while another worker starts the same job.
      if (reason && work) await settled(work, WIND_DOWN_MS);
      if (reason === 'shutdown') {
        // Handed back whole: the next worker starts it again; no attempt is used up.
        await store.transition(id, ['running'], 'queued', {}, { requeued: true, reason: 'the worker shut down' });
        await bullJob.moveToWait(token);
        throw new WaitingError();
      }
      if (reason === 'timeout') {
        await finishAndNotify(deps, job, 'timed_out', {
          code: 'TIMED_OUT',
          message: `job exceeded its ${job.timeout_seconds} s time limit`,
          details: { timeout_seconds: job.timeout_seconds },
        });
        throw new UnrecoverableError('timed out');
      }
      if (reason === 'cancelled') {
        const code = (await store.get(id))?.cancel_code ?? 'CANCELLED';
        await finishAndNotify(
          deps,
          job,
          'cancelled',
          code === 'SUPERSEDED'
            ? { code, message: 'superseded by a newer job with the same concurrency_key', details: {} }
            : { code: 'CANCELLED', message: 'cancelled while running', details: {} },
        );
        return;
      }
      const failure = err instanceof JobFailure ? err : new JobFailure('INTERNAL', 'the job failed unexpectedly; see the worker log');
      if (!(err instanceof JobFailure))
        logger.error(masker.mask(`job ${id} (${processor.action}) failed: ${(err as Error)?.stack ?? String(err)}`));
      const error: JobError = masker.maskDeep({ code: failure.code, message: failure.message, details: failure.details });
      if (failure.retryable && bullJob.attemptsMade + 1 < (bullJob.opts.attempts ?? 1)) {
        await store.transition(id, ['running'], 'queued', { error }, { retry: true, attempt, error });
        // BullMQ keeps the thrown error's message in Redis: the masked one.
        throw new JobFailure(error.code, error.message, true, error.details);
      }
      await finishAndNotify(deps, job, 'failed', error);
      // A build stopped by its gate was pushed already: the catalogue keeps its verdict.
      await recordFinished(deps, { ...job, state: 'failed', error, finished_at: nowIso() });
      throw new UnrecoverableError(error.message);
    } finally {
      clearTimeout(timer);
      bullSignal?.removeEventListener('abort', onBullAbort);
      deps.shutdown.removeEventListener('abort', onShutdown);
      await fair.release(job.tenant, id);
    }
  };
}

async function finishAndNotify(
  deps: RunnerDeps,
  job: JobRecord,
  state: 'failed' | 'cancelled' | 'timed_out',
  error: JobError,
): Promise<void> {
  const done = await deps.store.transition(job.id, ['running'], state, { error, finished_at: nowIso() }, { error });
  if (done?.applied) await deps.notifier.finished(job.id);
}

/** After the terminal state is written: a recording failure is logged, never the job's. */
async function recordFinished(deps: RunnerDeps, job: JobRecord): Promise<void> {
  try {
    await deps.recorder?.record(job);
  } catch (err) {
    deps.logger.warn(`job ${job.id}: recording it failed: ${(err as Error)?.message ?? String(err)}`);
  }
}

/** Waits for `work` to settle, at most `ms`. */
async function settled(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    work.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((r) => (timer = setTimeout(r, ms))),
  ]);
  clearTimeout(timer);
}

/** Rejects as soon as the signal aborts, even if the work itself ignores the signal. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    // The caller reads why from the signal (its reason: timeout, cancelled or shutdown).
    const onAbort = () => reject(new Error(`aborted: ${String(signal.reason)}`));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
