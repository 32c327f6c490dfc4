import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { selectContext } from '../../src/cli/client/context-files.js';
import { DockerignoreError, PatternMatcher, readPatterns } from '../../src/cli/client/dockerignore.js';
import { UsageError } from '../../src/cli/client/http.js';

/** Excluded? As BuildKit asks for a path seen on its own (every parent tested). */
const excluded = (patterns: string[], path: string) => new PatternMatcher(patterns).matchesOrParentMatches(path);

describe('.dockerignore patterns (moby/patternmatcher semantics)', () => {
  const cases: [pattern: string, path: string, expected: boolean][] = [
    ['**', 'file', true],
    ['**', 'dir/file', true],
    ['dir/**', 'dir/file', true],
    ['dir/**', 'dir/dir2/file', true],
    ['dir/**', 'other/file', false],
    ['**/dir', 'dir', true],
    ['**/dir', 'a/b/dir', true],
    ['**/dir', 'a/b/dir/file', true],
    ['**/dir2/*', 'dir/dir2/file', true],
    ['**/file', 'dir/dir/file', true],
    ['**/file', 'dir/dir/notfile', false],
    ['**.txt', 'file.txt', true],
    ['**.txt', 'dir/dir/file.txt', true],
    ['**/*.txt', 'file.txt', true],
    ['**/*.txt', 'dir/file.txt', true],
    ['**/*.txt', 'dir/file.txtx', false],
    ['a/**/b', 'a/b', true],
    ['a/**/b', 'a/x/y/b', true],
    ['a/**/b', 'ab', false],
    ['*', 'a/b', true], // the parent `a` matches
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['abc.def', 'abcdef', false],
    ['abc.def', 'abc.def', true],
    ['abc?def', 'abcZdef', true],
    ['abc?def', 'abc/def', false],
    ['abc+', 'abcc', false],
    ['abc+', 'abc+', true],
    ['a(b|c)', 'a(b|c)', true],
    ['a{1}', 'a{1}', true],
    ['[a-c]x', 'bx', true],
    ['[a-c]x', 'dx', false],
    ['[^a-c]x', 'dx', true],
    ['a\\*b', 'a*b', true],
    ['a\\*b', 'axb', false],
    ['readme.md', 'README.md', false], // case-sensitive, as on Linux
    ['node_modules', 'node_modules/pkg/index.js', true],
    ['node_modules', 'src/node_modules/pkg.js', false], // only at the root, unlike .gitignore
    ['.env', '.env', true],
    ['.env', '.envrc', false],
    ['./a/../b', 'b/c', true], // cleaned like filepath.Clean
  ];
  for (const [pattern, path, expected] of cases) {
    it(`${JSON.stringify(pattern)} ${expected ? 'excludes' : 'keeps'} ${path}`, () => {
      assert.equal(excluded(readPatterns(pattern), path), expected);
    });
  }

  it('the last matching pattern wins, and `!` re-includes, even under an excluded directory', () => {
    const patterns = readPatterns('*\n!keep\nnode_modules\n!node_modules/keep.js\n');
    assert.equal(excluded(patterns, 'keep'), false);
    assert.equal(excluded(patterns, 'other'), true);
    assert.equal(excluded(patterns, 'node_modules/keep.js'), false);
    assert.equal(excluded(patterns, 'node_modules/x.js'), true);
    // An exception before the exclusion it would undo does nothing.
    assert.equal(excluded(readPatterns('!a.txt\n*.txt'), 'a.txt'), true);
  });

  it('reads the file as BuildKit: comments in column 1, a leading `/`, a BOM, CRLF, blank lines', () => {
    assert.deepEqual(readPatterns('\uFEFF# comment\r\n/foo\r\n\r\n  bar/  \n! /baz\n # not a comment\n'), [
      'foo',
      'bar',
      '!baz',
      '# not a comment',
    ]);
    assert.equal(excluded(readPatterns('/foo'), 'foo/x'), true);
    assert.equal(excluded(readPatterns('/foo'), 'a/foo'), false);
  });

  it('refuses what BuildKit refuses: a lone `!`, an unclosed class, a trailing backslash', () => {
    for (const bad of ['!', 'a[b', 'a[]', 'a\\', '[z-a]'])
      assert.throws(() => new PatternMatcher(readPatterns(bad)), DockerignoreError, bad);
  });
});

describe('selectContext: what the CLI uploads', () => {
  const roots: string[] = [];
  after(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
  async function tree(files: Record<string, string>): Promise<string> {
    const root = await mkdtemp(join(tmpdir(), 'stevedore-dockerignore-'));
    roots.push(root);
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(root, path)), { recursive: true });
      await writeFile(join(root, path), text);
    }
    return root;
  }
  const files = {
    Dockerfile: 'FROM scratch\n',
    '.git/HEAD': 'ref\n',
    '.git/objects/ab/cdef': 'x',
    'node_modules/pkg/index.js': 'x',
    'node_modules/keep.js': 'x',
    '.env': 'SECRET=1\n',
    'src/app.js': 'x',
    'src/.env': 'nested: not matched by `.env`\n',
    'docs/a.md': 'x',
    'docs/keep.md': 'x',
  };

  it('leaves out .git, node_modules and .env but keeps `!` exceptions, their parents, the Dockerfile and .dockerignore', async () => {
    const dir = await tree({
      ...files,
      '.dockerignore': '.git\nnode_modules\n!node_modules/keep.js\n.env\ndocs\n!docs/keep.md\nDockerfile\n.dockerignore\n',
    });
    const { paths, ignoreFile, excluded } = await selectContext(dir);
    assert.equal(ignoreFile, '.dockerignore');
    assert.deepEqual(paths.sort(), [
      '.dockerignore',
      'Dockerfile',
      'docs',
      'docs/keep.md',
      'node_modules',
      'node_modules/keep.js',
      'src',
      'src/.env',
      'src/app.js',
    ]);
    // .git (once, not descended), .env, node_modules/pkg (no exception reaches inside), docs/a.md
    assert.equal(excluded, 4);
  });

  it('descends into excluded directories when an exception has wildcards (`*` then `!**/*.js`)', async () => {
    const dir = await tree({ ...files, '.dockerignore': '*\n!**/*.js\n' });
    const { paths } = await selectContext(dir);
    assert.deepEqual(paths.sort(), [
      '.dockerignore',
      'Dockerfile',
      'node_modules',
      'node_modules/keep.js',
      'node_modules/pkg',
      'node_modules/pkg/index.js',
      'src',
      'src/app.js',
    ]);
  });

  it('<Dockerfile>.dockerignore beside the Dockerfile wins over .dockerignore; an inline Dockerfile uses .dockerignore', async () => {
    const dir = await tree({
      ...files,
      'build/app.Dockerfile': 'FROM scratch\n',
      'build/app.Dockerfile.dockerignore': 'src\n**/.env\n.git\nnode_modules\ndocs\n',
      '.dockerignore': 'docs\n',
    });
    const specific = await selectContext(dir, 'build/app.Dockerfile');
    assert.equal(specific.ignoreFile, 'build/app.Dockerfile.dockerignore');
    assert.deepEqual(specific.paths.sort(), [
      '.dockerignore',
      'Dockerfile',
      'build',
      'build/app.Dockerfile',
      'build/app.Dockerfile.dockerignore',
    ]);
    const inline = await selectContext(dir, undefined);
    assert.equal(inline.ignoreFile, '.dockerignore');
    assert.ok(inline.paths.includes('.env') && inline.paths.includes('build/app.Dockerfile') && !inline.paths.includes('docs'));
  });

  it('without an ignore file everything goes; a bad pattern is a usage error naming the file', async () => {
    const dir = await tree({ Dockerfile: 'FROM scratch\n', '.env': 'x' });
    assert.deepEqual((await selectContext(dir)).paths.sort(), ['.env', 'Dockerfile']);
    const bad = await tree({ Dockerfile: 'FROM scratch\n', '.dockerignore': 'a[b\n' });
    await assert.rejects(selectContext(bad), (err: Error) => err instanceof UsageError && /\.dockerignore: syntax error/.test(err.message));
  });
});
