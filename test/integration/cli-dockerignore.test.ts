import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli, showRun } from '../support/cli-run.js';
import { AUTH, TOKEN, startStack, type Stack } from '../support/stack.js';
import { tempDir } from '../support/temp-dir.js';

const cli = runCli;

const show = showRun;

function tree(files: Record<string, string>): string {
  const dir = tempDir('stv-cli-ignore-');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), content);
  }
  return dir;
}

const SECRET = `s3cr3t-${Date.now()}`;
/** Copies the context into the image and prints what BuildKit put there, one `listed:` line a file. */
const LIST = `COPY . /ctx\nRUN cd /ctx && find . -type f | sort | sed 's/^/listed:/' # ${Date.now()}\n`;
const BIG = 'x'.repeat(2 * 1024 * 1024);

describe('the CLI applies .dockerignore before uploading a build context', () => {
  let stack: Stack;
  let env: Record<string, string>;

  before(async () => {
    stack = await startStack({ buildkit: true });
    env = { STEVEDORE_URL: stack.base, STEVEDORE_TOKEN: TOKEN };
  });
  after(async () => stack?.stop());

  /** Builds `dir` through the CLI; the job record (--json) and the RUN step's listing of what BuildKit saw. */
  async function build(dir: string, extra: string[] = []): Promise<{ job: any; listed: string[] }> {
    const r = await cli(['build', dir, ...extra, '--json'], env);
    assert.equal(r.code, 0, show(r));
    const job = JSON.parse(r.stdout);
    const events = (await (await fetch(`${stack.base}/v1/jobs/${job.id}/events?follow=false`, { headers: AUTH })).json()) as {
      items: { type: string; data: { line?: string } }[];
    };
    const lines = events.items.filter((e) => e.type === 'log').map((e) => e.data.line ?? '');
    const listed = lines.flatMap((l) => /^listed:(.*)$/.exec(l.trim())?.[1] ?? []).sort();
    return { job, listed };
  }

  /** The tree the server unpacked for this job's upload. */
  const storedTree = (job: any) => join(stack.config.stateDir, 'contexts', String(job.request.context.upload).slice(7), 'ctx');

  it('.git, node_modules and .env never reach the server; a `!` exception and the Dockerfile do', async () => {
    const files: Record<string, string> = {
      Dockerfile: `FROM debian:bookworm-slim\n${LIST}`,
      // The Dockerfile and the ignore file themselves are excluded from COPY, yet sent: BuildKit reads both.
      '.dockerignore': '# what stays here\n.git\nnode_modules\n!node_modules/keep.js\n.env\n**/*.secret\nDockerfile\n.dockerignore\n',
      '.git/HEAD': 'ref: refs/heads/main\n',
      '.git/config': `[credential]\n  helper = store ${SECRET}\n`,
      'node_modules/big/index.js': BIG,
      'node_modules/keep.js': 'module.exports = 1;\n',
      '.env': `TOKEN=${SECRET}\n`,
      'src/app.js': 'console.log(1);\n',
      'src/deep/key.secret': SECRET,
      'app.txt': 'app\n',
    };
    const dir = tree(files);
    const { job, listed } = await build(dir);
    assert.equal(job.state, 'succeeded');

    const sent = ['Dockerfile', '.dockerignore', 'node_modules/keep.js', 'src/app.js', 'app.txt'];
    const bytes = sent.reduce((n, f) => n + Buffer.byteLength(files[f]!), 0);
    assert.deepEqual(job.result.context, { files: sent.length, bytes }, 'what the server received, counted by its unpacker');
    // What BuildKit put in the image: the same patterns applied again on the server.
    assert.deepEqual(listed, ['./app.txt', './node_modules/keep.js', './src/app.js']);

    const stored = storedTree(job);
    assert.ok(existsSync(join(stored, 'node_modules/keep.js')), stored);
    for (const ignored of ['.git', '.env', 'node_modules/big', 'src/deep/key.secret'])
      assert.equal(existsSync(join(stored, ignored)), false, `${ignored} reached the server`);
  });

  it('-f sub/app.Dockerfile applies sub/app.Dockerfile.dockerignore instead of .dockerignore', async () => {
    const files: Record<string, string> = {
      'sub/app.Dockerfile': `FROM debian:bookworm-slim\n${LIST}`,
      'sub/app.Dockerfile.dockerignore': '*\n!app.txt\n',
      '.dockerignore': 'app.txt\n',
      '.env': `TOKEN=${SECRET}\n`,
      'app.txt': 'app\n',
      'other.txt': 'other\n',
    };
    const dir = tree(files);
    const { job, listed } = await build(dir, ['-f', join(dir, 'sub/app.Dockerfile')]);
    assert.equal(job.state, 'succeeded');
    const sent = ['sub/app.Dockerfile', 'sub/app.Dockerfile.dockerignore', '.dockerignore', 'app.txt'];
    assert.deepEqual(job.result.context, { files: sent.length, bytes: sent.reduce((n, f) => n + Buffer.byteLength(files[f]!), 0) });
    assert.deepEqual(listed, ['./app.txt']);
    assert.equal(existsSync(join(storedTree(job), '.env')), false);
  });
});
