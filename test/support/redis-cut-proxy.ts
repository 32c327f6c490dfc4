import { createServer, connect, type Server, type Socket } from 'node:net';
import { testRedisUrl } from './env.js';

/**
 * A TCP proxy in front of a Redis the test owns, which "loses Redis" at an exact point of
 * a client's conversation: right after the reply to the first command matching a
 * predicate has gone back to the client, every proxied connection is cut and new ones are
 * refused. Commands any client sends after the matching one are held back (never reach
 * Redis), so nothing that follows it — e.g. a submit's queue add after its record write —
 * can slip through. It reads the RESP it relays: the client's commands (arrays of bulk
 * strings) and, on the matching connection, the number of replies, to know when the
 * matching command's reply has passed.
 */
export class RedisCutProxy {
  private server?: Server;
  private readonly sockets = new Set<Socket>();
  private down = false;
  private holding = false;
  private trigger?: { match: (args: string[]) => boolean; resolve: (args: string[]) => void };
  port = 0;

  constructor(private readonly targetPort: number) {}

  get url(): string {
    return testRedisUrl(this.port);
  }

  async listen(): Promise<void> {
    this.server = createServer((client) => this.relay(client));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.server.unref(); // a test that fails before close() still lets the process end
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Resolves with the matching command's arguments once its reply has reached the client and every connection is cut. */
  cutAfter(match: (args: string[]) => boolean): Promise<string[]> {
    return new Promise((resolve) => (this.trigger = { match, resolve }));
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private cutAll(): void {
    this.down = true;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
  }

  private relay(client: Socket): void {
    if (this.down) return void client.destroy();
    const upstream = connect(this.targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    let pending = Buffer.alloc(0);
    let sent = 0; // commands forwarded on this connection
    let replies = Buffer.alloc(0);
    let answered = 0; // replies relayed back on it
    let cutAt = 0; // the matching command's number, once forwarded here
    let matchedArgs: string[] = [];
    client.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const parsed = readCommand(pending);
        if (!parsed) return;
        const raw = pending.subarray(0, parsed.end);
        pending = pending.subarray(parsed.end);
        if (this.holding || this.down) continue; // after the matching command: never reaches Redis
        upstream.write(raw);
        sent++;
        if (this.trigger?.match(parsed.args)) {
          this.holding = true;
          cutAt = sent;
          matchedArgs = parsed.args;
        }
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (this.down) return;
      replies = Buffer.concat([replies, chunk]);
      for (let end = skipValue(replies, 0); end > 0; end = skipValue(replies, 0)) {
        replies = replies.subarray(end);
        answered++;
      }
      if (!cutAt || answered < cutAt) return void client.write(chunk);
      const trigger = this.trigger!;
      this.trigger = undefined;
      cutAt = 0;
      // The matching command's reply is in this chunk: cut once it has left this process.
      client.write(chunk, () => {
        this.cutAll();
        trigger.resolve(matchedArgs);
      });
    });
  }
}

/** One client command (an array of bulk strings) at the start of `buf`, or undefined while incomplete. */
function readCommand(buf: Buffer): { args: string[]; end: number } | undefined {
  if (buf.length === 0) return undefined;
  if (buf[0] !== 0x2a /* '*' */) {
    // An inline command (redis-cli style): one line.
    const eol = buf.indexOf('\r\n');
    return eol < 0 ? undefined : { args: buf.subarray(0, eol).toString().split(' '), end: eol + 2 };
  }
  let eol = buf.indexOf('\r\n');
  if (eol < 0) return undefined;
  const n = Number(buf.subarray(1, eol).toString());
  let pos = eol + 2;
  const args: string[] = [];
  for (let i = 0; i < n; i++) {
    eol = buf.indexOf('\r\n', pos);
    if (eol < 0) return undefined;
    const len = Number(buf.subarray(pos + 1, eol).toString());
    const start = eol + 2;
    if (buf.length < start + len + 2) return undefined;
    args.push(buf.subarray(start, start + len).toString());
    pos = start + len + 2;
  }
  return { args, end: pos };
}

/** The end of the RESP2/RESP3 reply starting at `pos` (ioredis speaks RESP3 after HELLO 3), or -1 while it is incomplete. */
function skipValue(buf: Buffer, pos: number): number {
  const eol = buf.indexOf('\r\n', pos);
  if (eol < 0) return -1;
  const type = String.fromCharCode(buf[pos]!);
  const n = Number(buf.subarray(pos + 1, eol).toString());
  const next = eol + 2;
  // Simple lines: status, error, integer, null, boolean, double, big number.
  if ('+-:_#,('.includes(type)) return next;
  // Blobs: bulk string, verbatim string, blob error.
  if ('$=!'.includes(type)) return n < 0 ? next : buf.length >= next + n + 2 ? next + n + 2 : -1;
  // Aggregates: array, set, push (n values), map (n pairs); an attribute (n pairs) precedes the reply it annotates.
  if ('*~>%|'.includes(type)) {
    let p = next;
    for (let i = 0; i < (type === '%' || type === '|' ? 2 * n : Math.max(n, 0)); i++) {
      p = skipValue(buf, p);
      if (p < 0) return -1;
    }
    return type === '|' ? skipValue(buf, p) : p;
  }
  return -1; // not RESP: stops counting (and the test waiting for its cut fails)
}
