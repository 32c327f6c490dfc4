import { readFile } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { verdictFacts } from './verdict-facts.js';

/**
 * The thread a large report is parsed on (report-reader.ts starts it): JSON.parse of tens
 * of megabytes takes the better part of a second, which on the API's own thread would
 * stall every other request. It reads the file itself, so the text never crosses threads;
 * only the facts, a few percent of it, are sent back. One report at a time: a burst of
 * large reports queues here instead of holding all their texts in memory at once.
 */
let queue: Promise<void> = Promise.resolve();
parentPort?.on('message', (message: { id: number; path: string }) => {
  queue = queue.then(() =>
    readFile(message.path, 'utf8')
      .then((text) => parentPort!.postMessage({ id: message.id, facts: verdictFacts(JSON.parse(text)) }))
      .catch((err: unknown) => parentPort!.postMessage({ id: message.id, error: err instanceof Error ? err.message : String(err) })),
  );
});
