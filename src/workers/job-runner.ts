import { UnrecoverableError, type Job } from 'bullmq';
import type { Logger } from '@nestjs/common';
import type { JobStore } from '../jobs/job-store.js';
import type { QueuePayload } from '../jobs/queues.js';
import { emptyResult, type AvailableAction, type JobError, type JobRecord } from '../jobs/job.types.js';
import { JobFailure, type ActionProcessor, type JobContext } from './processor.js';

const nowIso = () => new Date().toISOString();

/**
 * The BullMQ processor around every action: queued → running, the time limit, cancel,
 * and the terminal state with its result or error. Retries stay BullMQ's: a retryable
 * failure with attempts left goes back to `queued` and is thrown for BullMQ to back off.
 */
export function createJobRunner<A extends AvailableAction>(processor: ActionProcessor<A>, store: JobStore, logger: Logger) {
  return async (bullJob: Job<QueuePayload>, _token?: string, bullSignal?: AbortSignal): Promise<void> => {
    const id = bullJob.data.jobId;
    const attempt = bullJob.attemptsMade + 1;
    const started = await store.transition(id, ['queued'], 'running', { started_at: nowIso(), attempts: attempt }, { attempt });
    if (!started?.applied) return; // cancelled or expired while queued: nothing to do
    const job = (await store.get(id)) as JobRecord<A> | undefined;
    if (!job) return;

    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort('timeout'), job.timeout_seconds * 1000);
    const onBullAbort = () => controller.abort('cancelled');
    bullSignal?.addEventListener('abort', onBullAbort, { once: true });
    if (job.cancel_requested) controller.abort('cancelled');

    const ctx: JobContext<A> = {
      job,
      signal: controller.signal,
      progress: async (message, extra = {}) => void (await store.appendEvent(id, 'progress', { message, ...extra })),
      log: async (line, stream = 'stdout', fields = {}) => void (await store.appendEvent(id, 'log', { ...fields, stream, line })),
      emit: async (type, data) => void (await store.appendEvent(id, type, data)),
    };
    try {
      controller.signal.throwIfAborted();
      const result = { ...emptyResult(), ...(await abortable(processor.process(ctx), controller.signal)) };
      await store.appendEvent(id, 'result', { result });
      await store.transition(id, ['running'], 'succeeded', { result, finished_at: nowIso() });
    } catch (err) {
      const reason = controller.signal.aborted ? controller.signal.reason : undefined;
      if (reason === 'timeout') {
        await finish(store, id, 'timed_out', { code: 'TIMED_OUT', message: `job exceeded its ${job.timeout_seconds} s time limit`, details: { timeout_seconds: job.timeout_seconds } });
        throw new UnrecoverableError('timed out');
      }
      if (reason === 'cancelled') {
        await finish(store, id, 'cancelled', { code: 'CANCELLED', message: 'cancelled while running', details: {} });
        return;
      }
      const failure = err instanceof JobFailure ? err : new JobFailure('INTERNAL', 'the job failed unexpectedly; see the worker log');
      if (!(err instanceof JobFailure)) logger.error(`job ${id} (${processor.action}) failed: ${(err as Error)?.stack ?? String(err)}`);
      const error: JobError = { code: failure.code, message: failure.message, details: failure.details };
      if (failure.retryable && attempt < (bullJob.opts.attempts ?? 1)) {
        await store.transition(id, ['running'], 'queued', { error }, { retry: true, attempt, error });
        throw failure;
      }
      await finish(store, id, 'failed', error);
      throw new UnrecoverableError(failure.message);
    } finally {
      clearTimeout(timer);
      bullSignal?.removeEventListener('abort', onBullAbort);
    }
  };
}

function finish(store: JobStore, id: string, state: 'failed' | 'cancelled' | 'timed_out', error: JobError) {
  return store.transition(id, ['running'], state, { error, finished_at: nowIso() }, { error });
}

/** Rejects as soon as the signal aborts, even if the work itself ignores the signal. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
