import { createServer, request } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Header } from 'tar';
import { readSse } from './sse.js';

/**
 * A load generator run as its own process (test/integration/event-loop.test.ts starts it):
 * the heavy client work (making and sending a 500 MiB body, reading 200 event streams)
 * must not run on the event loop of the test process, whose probes measure the service.
 * Prints one JSON line with what it saw, then exits.
 *
 *   node load-child.js upload <base> <token> <files> <fileBytes>
 *   node load-child.js sse <eventsUrl> <token> <streams>
 *   node load-child.js control   (a bare node:http server answering {"status":"ok"}: prints its port, runs until killed)
 */

const [mode, ...args] = process.argv.slice(2);

/** A tar of `files` regular files of `fileBytes` each, made as it is sent: never held whole. */
function* tarOf(files: number, fileBytes: number): Generator<Buffer> {
  const body = randomBytes(fileBytes);
  const pad = Buffer.alloc((512 - (fileBytes % 512)) % 512);
  for (let i = 0; i < files; i++) {
    const header = new Header({
      path: `data/${Math.floor(i / 100)}/f${i}.bin`,
      mode: 0o644,
      size: fileBytes,
      mtime: new Date(0),
      type: 'File',
    });
    header.encode();
    yield header.block!;
    body.writeUInt32BE(i, 0); // no two files alike
    yield Buffer.from(body);
    if (pad.length) yield pad;
  }
  yield Buffer.alloc(1024);
}

async function upload(base: string, token: string, files: number, fileBytes: number) {
  const length = files * (512 + Math.ceil(fileBytes / 512) * 512) + 1024;
  const started = Date.now();
  const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${base}/v1/contexts`,
      { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-tar', 'content-length': length } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    pipeline(Readable.from(tarOf(files, fileBytes)), req).catch(reject);
  });
  return { ...answer, bytes: length, ms: Date.now() - started };
}

async function sse(url: string, token: string, streams: number) {
  const started = Date.now();
  const results = await Promise.all(
    // Opened over a second, not in one millisecond: 200 connections at the same instant queue
    // a few hundred ms of short request handling ahead of everything else (seen as one slow
    // probe while the loop delay stayed under 100 ms); the steady 200 streams are the load here.
    Array.from({ length: streams }, (_, i) =>
      sleep(i * 5)
        .then(() => readSse(url, { authorization: `Bearer ${token}` }, undefined, 900_000))
        .then(
          (r) => ({
            status: r.status,
            events: r.events.length,
            types: [...new Set(r.events.map((e) => e.event))],
            heartbeats: r.heartbeats,
          }),
          (err: unknown) => ({ status: 0, events: 0, types: [], heartbeats: 0, error: (err as Error).message }),
        ),
    ),
  );
  return { ms: Date.now() - started, results };
}

if (mode === 'control') {
  const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'));
  server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ port: (server.address() as { port: number }).port })}\n`));
  await new Promise(() => undefined);
}

const result =
  mode === 'upload'
    ? await upload(args[0]!, args[1]!, Number(args[2]), Number(args[3]))
    : mode === 'sse'
      ? await sse(args[0]!, args[1]!, Number(args[2]))
      : { error: `unknown mode ${mode}` };
process.stdout.write(`${JSON.stringify(result)}\n`);
