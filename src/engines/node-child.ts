import { fork, type ChildProcess } from 'node:child_process';

/**
 * A Node child for CPU- or memory-heavy work the event loop must not do (a context's tar,
 * an image's layers): its own heap limit, so a hostile input kills the child and not the
 * server; JSON over IPC only; nothing inherited (no execArgv, NODE_OPTIONS or environment
 * beyond `env`), so it loads only what the request asked for. `stderrTail()` keeps the
 * last 4 KiB for the error when it dies without an answer.
 */
export function forkNodeChild(
  modulePath: string,
  heapMb: number,
  env: NodeJS.ProcessEnv,
): { child: ChildProcess; stderrTail: () => string; outOfMemory: () => boolean } {
  const child = fork(modulePath, [], {
    execArgv: [`--max-old-space-size=${heapMb}`],
    env,
    serialization: 'json',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4096);
  });
  return { child, stderrTail: () => stderr.trim().slice(-500), outOfMemory: () => /heap limit|out of memory/i.test(stderr) };
}
