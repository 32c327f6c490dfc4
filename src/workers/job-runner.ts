import { randomUUID } from 'node:crypto';
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
import type { LeaseWatch } from './lease-watch.js';

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
  /** Stops a job whose lock this worker can no longer vouch for (lease-watch.ts). */
  leases?: LeaseWatch;
}

/**
 * The BullMQ processor around every action: queued → running (after the tenant's
 * running cap), the time limit, cancel, recovery of jobs whose worker died, hand-back on
 * shutdown, and the terminal state with its result or error. Retries stay BullMQ's: a
 * retryable failure with attempts left goes back to `queued` and is thrown for BullMQ to
 * back off.
 *
 * Fencing: at most one live run per job. Each run that starts a job writes its BullMQ
 * lock token into the record as `owner`; the run's events, its terminal state and every
 * side effect outside the record (ctx.fence before a push, a signature, an attestation)
 * are applied only while the record still names it. A run whose lock lapsed (Redis
 * frozen or unreachable longer than the lock: LeaseWatch) is stopped at once, and one
 * that finds another owner stops before its next side effect; either way it writes no
 * state, sends no webhook and records nothing in the catalogue: those belong to the run
 * that holds the job now.
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
      await finishAndNotify(deps, found, undefined, 'failed', {
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
    // This run's fencing token: BullMQ's lock token is unique to each hand-out of the job.
    const owner = token ?? randomUUID();
    const started = await store.transition(
      id,
      recovered ? ['running'] : ['queued'],
      'running',
      { started_at: nowIso(), attempts: attempt, owner },
      recovered ? { attempt, recovered: true, reason: 'the previous run stopped or lost its lock' } : { attempt },
    );
    if (!started?.applied) return void (await fair.release(found.tenant, id));
    const job = ((await store.get(id)) ?? found) as JobRecord<A>;

    const controller = new AbortController();
    let lostWhy: string | undefined;
    const loseLease = (why: string) => {
      lostWhy ??= why;
      controller.abort('lease_lost');
    };
    const unwatch = deps.leases?.watch(id, loseLease) ?? (() => undefined);
    const timer = setTimeout(() => controller.abort('timeout'), job.timeout_seconds * 1000);
    const onBullAbort = () => controller.abort('cancelled');
    const onShutdown = () => controller.abort('shutdown');
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    deps.shutdown.addEventListener('abort', onShutdown, { once: true });
    if (job.cancel_requested) controller.abort('cancelled');
    if (deps.shutdown.aborted) controller.abort('shutdown');

    // Everything this job writes from here on passes through its masker.
    const masker = new SecretMasker();
    const TAKEN_OVER = 'another worker has taken the job over';
    const append = async (type: Parameters<JobStore['appendEvent']>[1], data: Record<string, unknown>) => {
      if ((await store.appendEvent(id, type, masker.maskDeep(data), owner)) === false) loseLease(TAKEN_OVER);
    };
    const ctx: JobContext<A> = {
      job,
      signal: controller.signal,
      progress: (message, extra = {}) => append('progress', { message, ...extra }),
      log: (line, stream = 'stdout', fields = {}) => append('log', { ...fields, stream, line }),
      emit: (type, data) => append(type, data),
      maskSecrets: (values) => masker.add(values),
      fence: async (what) => {
        controller.signal.throwIfAborted();
        if (!(await store.owns(id, owner))) loseLease(`${TAKEN_OVER} (before: ${what})`);
        controller.signal.throwIfAborted();
      },
    };
    let work: Promise<unknown> | undefined;
    try {
      controller.signal.throwIfAborted();
      const processing = processor.process(ctx);
      work = processing;
      const result = masker.maskDeep({ ...emptyResult(), ...(await abortable(processing, controller.signal)) });
      if ((await store.appendEvent(id, 'result', { result }, owner)) === false) loseLease(TAKEN_OVER);
      controller.signal.throwIfAborted();
      const finished_at = nowIso();
      const done = await store.transition(id, ['running'], 'succeeded', { result, finished_at }, {}, owner);
      if (done?.applied) {
        await notifier.finished(id);
        await recordFinished(deps, { ...job, state: 'succeeded', result, error: null, finished_at });
      }
    } catch (err) {
      const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
      // The work was told to stop (its processes signalled): let it wind down before the
      // job is handed back or finished, so no buildctl outlives its worker or runs on
      // while another worker starts the same job.
      if (reason && work) await settled(work, WIND_DOWN_MS);
      if (reason === 'lease_lost') {
        // Nothing is written as this run's: the record belongs to the run holding the job
        // now (or, if none yet, to the one BullMQ's stalled check hands it to next). The
        // warning is for the job's reader, unfenced, so the log says why a run vanished.
        logger.warn(`job ${id} (${processor.action}) run ${attempt} stopped: ${lostWhy}`);
        await store
          .appendEvent(id, 'warning', { code: 'LEASE_LOST', message: `run ${attempt} stopped: ${String(lostWhy)}`, attempt })
          .catch(() => undefined);
        // Still holding the lock (a renewal merely late): hand the job back now rather
        // than after the lock runs out. Not holding it: BullMQ refuses, the stalled check decides.
        await bullJob.moveToWait(token).catch(() => undefined);
        throw new WaitingError();
      }
      if (reason === 'shutdown') {
        // Handed back whole: the next worker starts it again; no attempt is used up.
        await store.transition(id, ['running'], 'queued', {}, { requeued: true, reason: 'the worker shut down' }, owner);
        await bullJob.moveToWait(token);
        throw new WaitingError();
      }
      if (reason === 'timeout') {
        await finishAndNotify(deps, job, owner, 'timed_out', {
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
          owner,
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
        await store.transition(id, ['running'], 'queued', { error }, { retry: true, attempt, error }, owner);
        // BullMQ keeps the thrown error's message in Redis: the masked one.
        throw new JobFailure(error.code, error.message, true, error.details);
      }
      // A build stopped by its gate was pushed already: the catalogue keeps its verdict.
      if (await finishAndNotify(deps, job, owner, 'failed', error))
        await recordFinished(deps, { ...job, state: 'failed', error, finished_at: nowIso() });
      throw new UnrecoverableError(error.message);
    } finally {
      clearTimeout(timer);
      bullSignal?.removeEventListener('abort', onBullAbort);
      deps.shutdown.removeEventListener('abort', onShutdown);
      unwatch();
      // A run that lost the job leaves the slot to the run holding it now.
      if (controller.signal.reason !== 'lease_lost') await fair.release(job.tenant, id);
    }
  };
}

/** The terminal state of a run that still owns its job (`owner` undefined: whoever runs it). True when written. */
async function finishAndNotify(
  deps: RunnerDeps,
  job: JobRecord,
  owner: string | undefined,
  state: 'failed' | 'cancelled' | 'timed_out',
  error: JobError,
): Promise<boolean> {
  const done = await deps.store.transition(job.id, ['running'], state, { error, finished_at: nowIso() }, { error }, owner);
  if (done?.applied) await deps.notifier.finished(job.id);
  return !!done?.applied;
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
