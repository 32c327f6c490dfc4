import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import request from 'supertest';
import { runProcess } from '../../src/engines/process-runner.js';
import { AUTH } from './stack.js';
import { tempDir } from './temp-dir.js';

/** Writes files into a fresh directory and packs it as tar.gz with the system tar. */
export async function tarGz(files: Record<string, string>, extraTarArgs: string[] = []): Promise<Buffer> {
  const dir = tempDir('stv-ctx-');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  const out = join(tempDir('stv-tar-'), 'ctx.tar.gz');
  await runProcess('tar', ['-czf', out, ...extraTarArgs, '-C', dir, '.']);
  return readFileSync(out);
}

export async function uploadContext(server: any, body: Buffer, type = 'application/gzip'): Promise<request.Response> {
  return request(server).post('/v1/contexts').set(AUTH).set('content-type', type).send(body);
}

/** Polls a job until it reaches one of `states`. */
export async function waitForJob(
  server: any,
  id: string,
  states = ['succeeded', 'failed', 'cancelled', 'timed_out'],
  timeoutMs = 240_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await request(server).get(`/v1/jobs/${id}`).set(AUTH).expect(200)).body;
    if (states.includes(job.state)) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} still ${job.state}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
