import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { gzipSync } from 'node:zlib';
import { create } from 'tar';
import { selectContext } from './context-files.js';
import { UsageError, type ApiClient } from './http.js';

/**
 * A local directory packed as tar.gz (node-tar, no shell, owner ids left out) and
 * uploaded to POST /v1/contexts. What its ignore file excludes (`.git`, `node_modules`,
 * `.env`, …) never leaves this machine: only the paths selectContext() keeps are packed.
 * `dockerfilePath` is the Dockerfile inside the context (it picks `<Dockerfile>.dockerignore`),
 * undefined when the Dockerfile goes inline.
 */
export async function uploadDirectory(
  client: ApiClient,
  dir: string,
  dockerfilePath: string | undefined = 'Dockerfile',
): Promise<{ digest: string; size_bytes: number }> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new UsageError(`${dir}: not a directory`);
  const { paths } = await selectContext(dir, dockerfilePath);
  const chunks: Buffer[] = [];
  if (paths.length) {
    for await (const chunk of create({ gzip: true, cwd: dir, portable: true, noDirRecurse: true }, paths) as AsyncIterable<Buffer>)
      chunks.push(chunk);
  } else chunks.push(gzipSync(Buffer.alloc(1024))); // an empty tar: its end-of-archive blocks
  return client.request('POST', '/v1/contexts', { body: Buffer.concat(chunks), contentType: 'application/gzip' });
}

/**
 * Where `-f` points, as a build request field: inside the context it is the context's
 * own `dockerfile_path`; anywhere else (or `-`, stdin) its text goes inline.
 */
export async function dockerfileField(
  file: string | undefined,
  contextDir: string | undefined,
): Promise<{ dockerfile_path?: string; dockerfile_inline?: string }> {
  if (file === undefined) return {};
  if (file === '-') return { dockerfile_inline: await readStdin() };
  const path = resolve(file);
  if (contextDir) {
    const rel = relative(resolve(contextDir), path);
    if (rel && !rel.startsWith('..') && !isAbsolute(rel)) {
      if (!(await stat(path).catch(() => undefined))?.isFile()) throw new UsageError(`${file}: no such file`);
      return { dockerfile_path: rel.split(sep).join('/') };
    }
  }
  return { dockerfile_inline: await readText(file) };
}

export async function readText(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
