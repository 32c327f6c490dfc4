import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { ContextError } from './tar-entry-policy.js';
import { forkNodeChild } from '../engines/node-child.js';
import type { UnpackAnswer } from './unpack-child.js';
import type { UnpackRequest, UnpackResult } from './upload-unpacker.js';

const CHILD = fileURLToPath(new URL('./unpack-child.js', import.meta.url));
const HEAP_MB = 384;
// Unpackers at once in this process; more wait their turn (within their time limit):
// fifty parallel uploads must not mean fifty processes of up to HEAP_MB each.
const SLOTS = Math.max(2, availableParallelism());
let busy = 0;
const waiting: (() => void)[] = [];

/** Resolves with a release function once a slot is free; rejects at the deadline. */
function acquire(deadline: number): Promise<() => void> {
  const release = () => {
    busy--;
    waiting.shift()?.();
  };
  if (busy < SLOTS) {
    busy++;
    return Promise.resolve(release);
  }
  return new Promise((resolve, reject) => {
    const turn = () => {
      clearTimeout(timer);
      busy++;
      resolve(release);
    };
    const timer = setTimeout(
      () => {
        waiting.splice(waiting.indexOf(turn), 1);
        reject(
          new ContextError('UNPACKER_BUSY', `every context unpacker (${SLOTS}) stayed busy for the upload's time limit; retry shortly`),
        );
      },
      Math.max(0, deadline - Date.now()),
    );
    waiting.push(turn);
  });
}

/** unpackInChild(), once one of the SLOTS is free: waiting counts against `timeoutMs`. */
export async function unpackWhenFree(request: UnpackRequest, timeoutMs: number): Promise<UnpackResult> {
  const deadline = Date.now() + timeoutMs;
  const release = await acquire(deadline);
  try {
    return await unpackInChild(request, Math.max(1000, deadline - Date.now()));
  } finally {
    release();
  }
}

/**
 * Runs unpackUpload() in a child process rather than a worker thread: it can be killed
 * at any point (inside zlib or fs calls too) when its time is up, it has its own heap
 * limit and its own libuv threadpool (inflating never queues the API's fs and crypto
 * work), and it runs at a lower CPU priority. Settles only once the child is gone, so
 * the caller can remove what it wrote without racing its last writes.
 */
export function unpackInChild(request: UnpackRequest, timeoutMs: number): Promise<UnpackResult> {
  return new Promise((resolve, reject) => {
    // No environment at all: the child loads nothing the request did not ask for.
    const { child, stderrTail, outOfMemory } = forkNodeChild(CHILD, HEAP_MB, {});
    let outcome: (() => void) | undefined;
    const done = () => {
      clearTimeout(timer);
      outcome!();
    };
    const settle = (then: () => void) => {
      outcome ??= then;
      if (child.pid === undefined)
        done(); // never started: no 'exit' will come
      else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    const timer = setTimeout(
      () =>
        settle(() =>
          reject(
            new ContextError(
              'CONTEXT_TOO_LARGE',
              `build context could not be checked and unpacked ` +
                `within ${Math.round(timeoutMs / 1000)} s (STEVEDORE_CONTEXT_UPLOAD_TIMEOUT_SECONDS)`,
            ),
          ),
        ),
      timeoutMs,
    );
    child.on('message', (answer: UnpackAnswer) => {
      if (answer.ok) return settle(() => resolve({ expandedBytes: answer.expandedBytes, entries: answer.entries, files: answer.files }));
      if (answer.code) return settle(() => reject(new ContextError(answer.code!, answer.message)));
      settle(() =>
        reject(Object.assign(new Error(`unpacking a build context failed: ${answer.message}`), answer.errno ? { code: answer.errno } : {})),
      );
    });
    child.on('error', (err) => settle(() => reject(err)));
    child.on('exit', (code, sig) => {
      if (!outcome) {
        // Over its heap limit (what a hostile archive could still try) is the upload's doing.
        if (outOfMemory())
          outcome = () =>
            reject(new ContextError('CONTEXT_TOO_LARGE', 'build context could not be checked within the memory of its unpacker'));
        else outcome = () => reject(new Error(`the context unpacker exited (${sig ?? `code ${code}`}) without an answer: ${stderrTail()}`));
      }
      done();
    });
    if (child.pid !== undefined) child.send(request, (err) => err && settle(() => reject(err)));
  });
}
