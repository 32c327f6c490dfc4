import { createReadStream, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join, normalize } from 'node:path';
import { runProcess } from '../../src/engines/process-runner.js';
import { tempDir } from './temp-dir.js';

/**
 * A git repository served over "dumb" HTTP (static files after `git update-server-info`),
 * which git, and so BuildKit's git source, clones like any other http URL.
 */
export async function serveGitRepo(files: Record<string, string>): Promise<{ url: string; commit: string; close(): void }> {
  const work = tempDir('stv-git-work-');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(work, name, '..'), { recursive: true });
    writeFileSync(join(work, name), content);
  }
  const git = (args: string[], cwd: string) =>
    runProcess('git', ['-c', 'user.name=stevedore', '-c', 'user.email=test@stevedore.invalid', '-c', 'init.defaultBranch=main', ...args], {
      cwd,
    });
  await git(['init', '-q'], work);
  await git(['add', '.'], work);
  await git(['commit', '-q', '-m', 'test'], work);
  const commit = (await git(['rev-parse', 'HEAD'], work)).stdout.trim();
  const bare = tempDir('stv-git-bare-');
  await git(['clone', '-q', '--bare', work, join(bare, 'repo.git')], bare);
  await git(['update-server-info'], join(bare, 'repo.git'));
  const server: Server = createServer((req, res) => {
    const path = normalize(join(bare, decodeURIComponent(new URL(req.url!, 'http://x').pathname)));
    if (!path.startsWith(bare) || !existsSync(path) || !statSync(path).isFile()) return void res.writeHead(404).end();
    res.writeHead(200);
    createReadStream(path).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}/repo.git`, commit, close: () => server.close() };
}
