import { setPriority } from 'node:os';
import { ContextError } from './tar-entry-policy.js';
import { SERVER_SIDE, unpackUpload, type UnpackRequest } from './upload-unpacker.js';

/**
 * Entry point of the unpacker's child process (forked by unpack-runner.ts): one
 * request in over IPC, one answer out, then exit.
 */
export type UnpackAnswer =
  | { ok: true; expandedBytes: number; entries: number; files: number }
  | { ok: false; code?: ContextError['code']; errno?: string; message: string };

// Before anything else, so libuv's threadpool (started lazily, where zlib and fs work
// runs) inherits it: on a small machine the API's own threads win the CPU.
try {
  setPriority(10);
} catch {
  // not allowed here: run at normal priority
}
process.umask(0o022);
// The API process went away: nobody waits for this answer any more.
process.on('disconnect', () => process.exit(1));

function answer(message: UnpackAnswer): void {
  process.send!(message, () => process.exit(0));
}

process.once('message', (request: UnpackRequest) => {
  unpackUpload(request).then(
    (result) => answer({ ok: true, ...result }),
    (err: unknown) => {
      const e = err as { code?: unknown; message?: string };
      if (err instanceof ContextError) answer({ ok: false, code: err.code, message: err.message });
      else
        answer({
          ok: false,
          errno: typeof e?.code === 'string' && SERVER_SIDE.has(e.code) ? e.code : undefined,
          message: e?.message ?? String(err),
        });
    },
  );
});
