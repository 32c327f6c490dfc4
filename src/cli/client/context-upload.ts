import { readFile, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { create } from 'tar';
import { UsageError, type ApiClient } from './http.js';

/**
 * A local directory packed as tar.gz (node-tar, no shell, owner ids left out) and
 * uploaded to POST /v1/contexts; BuildKit applies the context's .dockerignore itself.
 */
export async function uploadDirectory(client: ApiClient, dir: string): Promise<{ digest: string; size_bytes: number }> {
  const info = await stat(dir).catch(() => undefined);
  if (!info?.isDirectory()) throw new UsageError(`${dir}: not a directory`);
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip: true, cwd: dir, portable: true }, ['.']) as AsyncIterable<Buffer>) chunks.push(chunk);
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
