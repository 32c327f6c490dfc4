import { createWriteStream } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGzip } from 'node:zlib';
import { rawTar, ustarHeader } from './tar-fixtures.js';

/**
 * Hostile upload bodies, made by streaming through zlib (gigabytes of zeros never sit
 * in memory), and a latency probe to run while they are sent.
 */
const MiB = 1024 * 1024;

/** Gzips `parts` (buffers, or a count of zero bytes) into `file`. */
export async function gzipToFile(file: string, parts: (Buffer | { zeros: number })[]): Promise<void> {
  async function* bytes() {
    const zeros = Buffer.alloc(4 * MiB);
    for (const part of parts) {
      if (Buffer.isBuffer(part)) {
        yield part;
        continue;
      }
      for (let left = part.zeros; left > 0; left -= zeros.length) yield left >= zeros.length ? zeros : zeros.subarray(0, left);
    }
  }
  await pipeline(Readable.from(bytes()), createGzip({ level: 9 }), createWriteStream(file));
}

/** A tar whose one file claims (and holds) `size` zero bytes: the classic bomb. */
export function bombParts(size: number): (Buffer | { zeros: number })[] {
  return [ustarHeader({ name: 'zeros.bin', type: '0' }, size), { zeros: size + ((512 - (size % 512)) % 512) + 1024 }];
}

/** `count` empty files. */
export function manyEmptyFiles(count: number): Buffer {
  return rawTar(Array.from({ length: count }, (_, i) => ({ name: `f/${i}`, type: '0' })));
}

export interface ProbeResult {
  samples: number;
  maxMs: number;
  failures: string[];
  /** The slowest samples: url, when (ms after the start) and how long. */
  slowest: string[];
}

/**
 * Every `intervalMs` until stopped, GETs each of `urls` (in parallel) and keeps the
 * longest answer time. The app runs in this process, so a blocked event loop shows.
 */
export function startProbe(urls: { url: string; headers?: Record<string, string> }[], intervalMs = 20): { stop(): Promise<ProbeResult> } {
  const result: ProbeResult = { samples: 0, maxMs: 0, failures: [], slowest: [] };
  const t0 = performance.now();
  const slow: [number, string][] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      await Promise.all(
        urls.map(async ({ url, headers }) => {
          const started = performance.now();
          try {
            const response = await fetch(url, { headers, signal: AbortSignal.timeout(30_000) });
            await response.arrayBuffer();
            if (!response.ok) result.failures.push(`${url}: ${response.status}`);
          } catch (err) {
            result.failures.push(`${url}: ${(err as Error).message}`);
          }
          const ms = performance.now() - started;
          result.maxMs = Math.max(result.maxMs, ms);
          slow.push([ms, `${new URL(url).pathname} at ${(started - t0).toFixed(0)}: ${ms.toFixed(1)} ms`]);
          result.samples++;
        }),
      );
      await sleep(intervalMs);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      result.slowest = slow
        .sort((a, b) => b[0] - a[0])
        .slice(0, 5)
        .map(([, text]) => text);
      return result;
    },
  };
}

/**
 * POSTs a body that trickles in (`chunk` every `everyMs`) until the server answers;
 * resolves with the status and body of that answer.
 */
export function trickleUpload(
  url: string,
  headers: Record<string, string>,
  everyMs = 200,
  chunk = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]),
): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    // Chunked, no content-length: the server learns the size only as the bytes come.
    const req = httpRequest(url, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/gzip', 'transfer-encoding': 'chunked' },
    });
    const timer = setInterval(() => req.write(chunk), everyMs);
    req.on('response', (res) => {
      clearInterval(timer);
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        req.destroy();
        resolve({ status: res.statusCode!, body: JSON.parse(text) });
      });
    });
    req.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    req.flushHeaders();
  });
}

/** Sends `prefix`, then closes the connection mid-body. */
export async function abortedUpload(url: string, headers: Record<string, string>, prefix: Buffer): Promise<void> {
  const req = httpRequest(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/gzip', 'content-length': String(prefix.length * 10) },
  });
  req.on('error', () => undefined);
  req.write(prefix);
  await sleep(300);
  req.destroy();
}
