import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DockerfileParser } from 'dockerfile-ast';
import { FileTree, shebang, type LayerEntries } from '../../src/analysis/image/file-tree.js';
import { DpkgOwners, finalLists, parseDpkgStatus, statusAt } from '../../src/analysis/image/dpkg-db.js';
import {
  copyRefusal,
  findArtifacts,
  findProgram,
  fullInterpreterPackage,
  namedRuntimePackages,
  rootImage,
} from '../../src/analysis/optimize/runtime-plan.js';
import { StageSplitError, writeStageSplit } from '../../src/analysis/optimize/stage-split.js';
import { evaluateMeasuredTarget } from '../../src/analysis/optimize/target-size.js';
import { tempDir } from '../support/temp-dir.js';

const ELF = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]);
const file = (path: string, size = 10, head?: Buffer) => ({ path, type: 'file' as const, size, link: '', head });
const dir = (path: string) => ({ path, type: 'dir' as const, size: 0, link: '' });
const link = (path: string, target: string) => ({ path, type: 'symlink' as const, size: 0, link: target });
const layer = (adds: LayerEntries['adds'], whiteouts: string[] = [], opaques: string[] = []): LayerEntries => ({
  adds,
  whiteouts,
  opaques,
});

/** A merged-/usr Debian base (layer 0), an apt layer (1) and a build layer (2). */
function debianLike(): FileTree {
  const tree = new FileTree();
  tree.apply(
    layer([
      dir('/usr/lib/x86_64-linux-gnu'),
      link('/lib', 'usr/lib'),
      link('/bin', 'usr/bin'),
      file('/usr/lib/x86_64-linux-gnu/libc.so.6', 2000, ELF),
      file('/usr/bin/dash', 100, ELF),
      link('/usr/bin/sh', 'dash'),
      file('/etc/passwd', 5),
      dir('/usr/local/bin'),
    ]),
  );
  tree.apply(
    layer([
      file('/usr/bin/gcc-12', 900, ELF),
      link('/usr/bin/gcc', 'gcc-12'),
      file('/usr/bin/python3.11', 500, ELF),
      link('/usr/bin/python3', 'python3.11'),
      file('/var/lib/apt/lists/deb.debian.org_x', 300),
      file('/usr/lib/python3/dist-packages/__pycache__/x.pyc', 7),
      link('/usr/bin/cc', '/etc/alternatives/cc'),
      file('/etc/ld.so.cache', 9),
    ]),
  );
  tree.apply(
    layer([
      file('/usr/local/bin/hello', 16000, ELF),
      dir('/app'),
      file('/app/app.py', 30, Buffer.from('#!/usr/bin/env python3\nprint(1)\n')),
      file('/app/lib/m.py', 40),
      file('/root/.cache/pip/blob', 5000),
      file('/tmp/build.o', 4000),
      file('/src/hello.c', 300),
      file('/src/Makefile', 30),
    ]),
  );
  return tree;
}

const LISTS = new Map([
  ['/var/lib/dpkg/info/libc6:amd64.list', '/.\n/lib/x86_64-linux-gnu/libc.so.6\n'],
  ['/var/lib/dpkg/info/dash.list', '/.\n/bin/dash\n/usr/bin/sh\n'],
  ['/var/lib/dpkg/info/gcc-12.list', '/usr/bin/gcc-12\n'],
  ['/var/lib/dpkg/info/gcc.list', '/usr/bin/gcc\n'],
  ['/var/lib/dpkg/info/python3.11-minimal.list', '/usr/bin/python3.11\n'],
  ['/var/lib/dpkg/info/python3-minimal.list', '/usr/bin/python3\n'],
]);

describe('the file tree of an image', () => {
  it('stacks layers: whiteouts and opaque directories hide what is below, never what the layer adds', () => {
    const tree = new FileTree();
    tree.apply(layer([file('/a/x'), file('/a/y'), file('/b/z')]));
    tree.apply(layer([file('/a/new')], ['/a/x'], ['/b']));
    assert.deepEqual(tree.list('/a').sort(), ['new', 'y']);
    assert.deepEqual(tree.list('/b'), []);
    assert.equal(tree.get('/a/new')?.layer, 1);
  });

  it('resolves symlinks in any component, relative and absolute, and gives up on loops', () => {
    const tree = debianLike();
    assert.equal(tree.resolve('/lib/x86_64-linux-gnu/libc.so.6'), '/usr/lib/x86_64-linux-gnu/libc.so.6');
    assert.equal(tree.resolve('/bin/sh'), '/usr/bin/dash');
    assert.equal(tree.resolve('/usr/bin/nothere'), undefined);
    tree.apply(layer([link('/loop/a', 'b'), link('/loop/b', 'a')]));
    assert.equal(tree.resolve('/loop/a'), undefined);
  });

  it('reads a #! line, with env and an argument', () => {
    assert.deepEqual(shebang(Buffer.from('#!/usr/bin/env python3\n')), { interpreter: '/usr/bin/env', arg: 'python3' });
    assert.deepEqual(shebang(Buffer.from('#!/bin/sh -e\nx')), { interpreter: '/bin/sh', arg: '-e' });
    assert.equal(shebang(Buffer.from('print(1)')), undefined);
  });
});

describe("dpkg's database", () => {
  it('keeps installed packages only, with their dependencies', () => {
    const status = parseDpkgStatus(
      'Package: libc6\nStatus: install ok installed\nEssential: yes\nDepends: libgcc-s1, foo (>= 1) | bar\nVersion: 2.36\n\n' +
        'Package: gone\nStatus: deinstall ok config-files\n\nPackage: python3\nStatus: hold ok installed\nVersion: 3.11\n',
    );
    assert.deepEqual([...status.keys()], ['libc6', 'python3']);
    assert.deepEqual(status.get('libc6')!.depends, ['libgcc-s1', 'foo', 'bar']);
    assert.equal(status.get('libc6')!.essential, true);
  });

  it('owns a path as listed (/lib/…) and as stored (/usr/lib/…) under merged /usr; only final lists count', () => {
    const tree = debianLike();
    const owners = new DpkgOwners(tree, LISTS);
    assert.equal(owners.owner('/usr/lib/x86_64-linux-gnu/libc.so.6'), 'libc6');
    assert.equal(owners.owner('/lib/x86_64-linux-gnu/libc.so.6'), 'libc6');
    assert.equal(owners.owner('/usr/local/bin/hello'), undefined);
    tree.apply(layer([file('/var/lib/dpkg/info/a.list'), file('/var/lib/dpkg/info/b.list')]));
    tree.apply(layer([], ['/var/lib/dpkg/info/b.list']));
    const texts = new Map([
      ['/var/lib/dpkg/info/a.list', [{ layer: 3, text: '/a\n' }]],
      ['/var/lib/dpkg/info/b.list', [{ layer: 3, text: '/b\n' }]],
      [
        '/var/lib/dpkg/status',
        [
          { layer: 0, text: 'base' },
          { layer: 3, text: 'later' },
        ],
      ],
    ]);
    assert.deepEqual([...finalLists(tree, texts).keys()], ['/var/lib/dpkg/info/a.list']);
    assert.equal(statusAt(texts, 2), 'base');
    assert.equal(statusAt(texts, 9), 'later');
    assert.equal(statusAt(texts, -1), '');
  });
});

describe('what a build produced', () => {
  it('keeps built files, drops owned files, caches, package state and alternatives; copies whole directories when it can', () => {
    const tree = debianLike();
    const a = findArtifacts(tree, new DpkgOwners(tree, LISTS), 1, new Set());
    assert.deepEqual(a.files, ['/app/app.py', '/app/lib/m.py', '/usr/local/bin/hello']);
    assert.deepEqual(a.copy, ['/app', '/usr/local'], 'a directory holding only built files goes whole');
    assert.deepEqual(a.elf, ['/usr/local/bin/hello']);
    assert.equal(a.bytes, 16070);
    tree.apply(layer([file('/etc/passwd', 6), file('/etc/myapp.conf', 3)]));
    assert.ok(!findArtifacts(tree, new DpkgOwners(tree, LISTS), 1, new Set()).files.includes('/etc/passwd'), 'no USER: /etc stays');
    const withUser = findArtifacts(tree, new DpkgOwners(tree, LISTS), 1, new Set([3]), { keepUsers: true });
    assert.ok(withUser.files.includes('/etc/passwd') && withUser.files.includes('/etc/myapp.conf'), 'USER: the user db; COPY: its files');
  });

  it('never copies a system directory whole, and refuses paths a COPY line would read as a pattern', () => {
    const tree = new FileTree();
    tree.apply(layer([file('/usr/bin/tool', 5, ELF), file('/opt/app/a[1]'), file('/opt/app/owned')]));
    const a = findArtifacts(tree, new DpkgOwners(tree, new Map([['/var/lib/dpkg/info/x.list', '/opt/app/owned\n']])), 0, new Set());
    assert.deepEqual(a.copy, ['/opt/app/a[1]', '/usr/bin/tool']);
    assert.match(copyRefusal(a.copy)!, /pattern/);
    assert.match(copyRefusal(Array.from({ length: 41 }, (_, i) => `/f${i}`))!, /41 separate places/);
    assert.equal(copyRefusal(['/app', '/usr/local/bin/hello']), undefined);
  });

  it('finds the program through PATH and WORKDIR, and a script’s interpreter through env', () => {
    const tree = debianLike();
    const elf = findProgram(tree, { Cmd: ['hello', 'x'], Env: ['PATH=/usr/local/bin:/usr/bin'] });
    assert.deepEqual([elf.kind, elf.real], ['elf', '/usr/local/bin/hello']);
    const script = findProgram(tree, { Entrypoint: ['./app.py'], WorkingDir: '/app' });
    assert.deepEqual([script.kind, script.real, script.interpreter], ['script', '/app/app.py', '/usr/bin/python3.11']);
    const interp = findProgram(tree, { Cmd: ['python3', 'app.py'] });
    assert.deepEqual([interp.kind, interp.path, interp.real], ['elf', '/usr/bin/python3', '/usr/bin/python3.11']);
    const shell = findProgram(tree, { Cmd: ['/bin/sh', '-c', 'python3 -c "print(42)"'] });
    assert.deepEqual([shell.kind, shell.real, shell.shellRuns], ['elf', '/usr/bin/dash', '/usr/bin/python3.11']);
    assert.equal(findProgram(tree, { Cmd: ['nothere'] }).kind, 'missing');
    assert.equal(findProgram(tree, {}).kind, 'missing');
  });

  it('keeps the packages a Dockerfile names that are not build tools, and the full interpreter package', () => {
    const df =
      'FROM debian:bookworm-slim\nRUN apt-get update && ' +
      'apt-get install -y gcc libc6-dev make python3-pip libssl3 ca-certificates git curl\n';
    assert.deepEqual(namedRuntimePackages(df), ['ca-certificates', 'libssl3']);
    assert.equal(
      fullInterpreterPackage('python3.11-minimal', (n) => n === 'python3.11'),
      'python3.11',
    );
    assert.equal(
      fullInterpreterPackage('python3.11-minimal', () => false),
      'python3.11-minimal',
    );
    assert.equal(rootImage('FROM debian:bookworm-slim AS b\nFROM b\nRUN x\n'), 'debian:bookworm-slim');
  });
});

describe('the multi-stage Dockerfile', () => {
  const config = {
    Env: ['PATH=/usr/local/bin:/usr/bin', 'GREETING=say "hi" $HOME'],
    Cmd: ['hello'],
    Entrypoint: null,
    WorkingDir: '/app',
    User: 'app',
    ExposedPorts: { '8080/tcp': {} },
    Labels: { 'org.example.team': 'a b' },
  };
  const original =
    'FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y gcc\n' +
    'COPY <<\'EOF\' /src/x.c\nint main(){}\nEOF\nRUN gcc -o /usr/local/bin/hello /src/x.c\nCMD ["hello"]\n';

  it('keeps the original as the build stage and carries every setting over; dockerfile-ast parses it', () => {
    const text = writeStageSplit({
      original,
      base: 'debian:bookworm-slim',
      packages: ['python3'],
      copy: ['/usr/local/bin/hello', '/app'],
      config,
    });
    assert.match(text, /^FROM debian:bookworm-slim AS stevedore-build\n/);
    assert.ok(text.includes("COPY <<'EOF' /src/x.c\nint main(){}\nEOF"), 'heredocs kept verbatim');
    assert.match(text, /apt-get install -y --no-install-recommends python3/);
    assert.match(text, /COPY --from=stevedore-build \["\/usr\/local\/bin\/hello", "\/usr\/local\/bin\/hello"\]/);
    assert.ok(text.includes('ENV GREETING="say \\"hi\\" \\$HOME"'), text);
    for (const line of ['WORKDIR /app', 'USER app', 'EXPOSE 8080/tcp', 'LABEL "org.example.team"="a b"', 'CMD ["hello"]'])
      assert.ok(text.includes(line), line);
    const parsed = DockerfileParser.parse(text);
    assert.equal(parsed.getFROMs().length, 2);
    assert.deepEqual(
      parsed
        .getInstructions()
        .map((i) => i.getKeyword())
        .slice(-3),
      ['EXPOSE', 'USER', 'CMD'],
    );
  });

  it('uses the final stage’s own name, writes no RUN on scratch, and refuses what it cannot write safely', () => {
    const named = writeStageSplit({
      original: 'FROM debian:bookworm-slim as builder\nRUN make\n',
      base: 'scratch',
      packages: [],
      copy: ['/hello'],
      config: { Cmd: ['/hello'] },
    });
    assert.match(named, /COPY --from=builder \["\/hello", "\/hello"\]/);
    assert.doesNotMatch(named.split('FROM scratch')[1]!, /RUN/);
    assert.throws(() => writeStageSplit({ original, base: 'scratch', packages: [], copy: ['/$HOME'], config: {} }), StageSplitError);
    assert.throws(() => writeStageSplit({ original, base: 'scratch', packages: ['x; rm'], copy: [], config: {} }), StageSplitError);
    assert.throws(() => writeStageSplit({ original, base: 'scratch', packages: [], copy: [], config: { User: 'a b' } }), StageSplitError);
  });
});

describe('a size target against measured rewrites', () => {
  it('names the least rewrite that meets it, or says by how much the smallest misses', () => {
    const rewrites = [
      { label: 'safe', size_bytes: 90 },
      { label: 'multi-stage on debian', size_bytes: 40 },
      { label: 'multi-stage on scratch', size_bytes: 5 },
    ];
    const met = evaluateMeasuredTarget(50, 160, rewrites);
    assert.deepEqual([met.met, met.gap_bytes, met.closing], [false, 110, ['multi-stage on debian: 40 bytes, 120 saved (measured)']]);
    const missed = evaluateMeasuredTarget(2, 160, rewrites);
    assert.match(missed.note, /cannot be met .*scratch.* 3 bytes over/);
    assert.equal(evaluateMeasuredTarget(200, 160, rewrites).met, true);
  });
});

describe('stevedore optimize --verify --check', () => {
  it('sends each check as an argv, and refuses --check without --verify', async () => {
    const { JOB_COMMANDS } = await import('../../src/cli/client/job-commands.js');
    const { parse } = await import('../../src/cli/client/args.js');
    const { writeFile } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const file = join(tempDir('stv-cli-'), 'Dockerfile');
    await writeFile(file, 'FROM debian:bookworm-slim\n');
    const optimize = JOB_COMMANDS.optimize!;
    const run = (...argv: string[]) => {
      const { values, positionals } = parse(argv, optimize.options);
      return optimize.request(values, positionals, undefined as never);
    };
    assert.deepEqual((await run(file, '--verify', '--check', 'hello x', '--check', ' ls  -l ')).verify, {
      commands: [
        ['hello', 'x'],
        ['ls', '-l'],
      ],
    });
    assert.equal((await run(file, '--verify')).verify, true);
    await assert.rejects(run(file, '--check', 'hello'), /--check needs --verify/);
  });
});
