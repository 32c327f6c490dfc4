import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findLibrary, multiarchTriplet, parseLdSoConf, type LibrarySearch } from '../../src/analysis/image/library-search.js';

describe('multiarchTriplet', () => {
  it("names Debian's triplet for each platform it ships", () => {
    const cases: [string, string | undefined, string][] = [
      ['amd64', undefined, 'x86_64-linux-gnu'],
      ['arm64', undefined, 'aarch64-linux-gnu'],
      ['arm64', 'v8', 'aarch64-linux-gnu'],
      ['arm', 'v7', 'arm-linux-gnueabihf'],
      ['arm', 'v6', 'arm-linux-gnueabihf'],
      ['arm', undefined, 'arm-linux-gnueabihf'],
      ['arm', 'v5', 'arm-linux-gnueabi'],
      ['386', undefined, 'i386-linux-gnu'],
      ['ppc64le', undefined, 'powerpc64le-linux-gnu'],
      ['s390x', undefined, 's390x-linux-gnu'],
      ['mips64le', undefined, 'mips64el-linux-gnuabi64'],
      ['riscv64', undefined, 'riscv64-linux-gnu'],
    ];
    for (const [arch, variant, triplet] of cases) assert.equal(multiarchTriplet(arch, variant), triplet, `${arch}/${variant}`);
  });

  it('answers undefined for anything else', () => {
    for (const arch of ['', 'x86_64', 'ppc64', 'wasm', 'toString', '__proto__']) assert.equal(multiarchTriplet(arch), undefined, arch);
    assert.equal(multiarchTriplet('arm', 'v8'), undefined);
  });
});

describe('parseLdSoConf', () => {
  it('lists absolute directories in order, without comments, includes or repeats', () => {
    const text = [
      '# libc default configuration',
      'include /etc/ld.so.conf.d/*.conf',
      '/usr/local/lib',
      '  /opt/app/lib/   # trailing comment',
      '',
      'relative/lib',
      'hwcap 0 nosegneg',
      '/usr//local/lib',
      '\t/lib/x86_64-linux-gnu\r',
    ].join('\n');
    assert.deepEqual(parseLdSoConf(text), ['/usr/local/lib', '/opt/app/lib', '/lib/x86_64-linux-gnu']);
    assert.deepEqual(parseLdSoConf(''), []);
  });
});

/** A search in an image holding `files`, for a program at /app/bin/server on amd64. */
function search(files: string[], overrides: Partial<LibrarySearch> = {}): LibrarySearch & { asked: string[] } {
  const set = new Set(files);
  const asked: string[] = [];
  return {
    from: '/app/bin/server',
    runpath: [],
    rpath: [],
    arch: 'amd64',
    confDirs: [],
    exists: (p) => {
      asked.push(p);
      return set.has(p);
    },
    ...overrides,
    asked,
  };
}

describe('findLibrary', () => {
  it('searches the default directories in order', () => {
    const s = search([]);
    assert.equal(findLibrary('libfoo.so.1', s), undefined);
    assert.deepEqual(s.asked, [
      '/lib/x86_64-linux-gnu/libfoo.so.1',
      '/usr/lib/x86_64-linux-gnu/libfoo.so.1',
      '/lib64/libfoo.so.1',
      '/usr/lib64/libfoo.so.1',
      '/lib/libfoo.so.1',
      '/usr/lib/libfoo.so.1',
    ]);
    // 32-bit: no lib64; an arch without a triplet: the plain directories only.
    const arm = search([], { arch: 'arm', variant: 'v7' });
    findLibrary('libfoo.so.1', arm);
    assert.deepEqual(arm.asked, [
      '/lib/arm-linux-gnueabihf/libfoo.so.1',
      '/usr/lib/arm-linux-gnueabihf/libfoo.so.1',
      '/lib/libfoo.so.1',
      '/usr/lib/libfoo.so.1',
    ]);
    const odd = search([], { arch: 'sparc' });
    findLibrary('libfoo.so.1', odd);
    assert.deepEqual(odd.asked, ['/lib/libfoo.so.1', '/usr/lib/libfoo.so.1']);
  });

  it('finds a library in the first directory that has it', () => {
    assert.equal(
      findLibrary('libc.so.6', search(['/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib/libc.so.6'])),
      '/usr/lib/x86_64-linux-gnu/libc.so.6',
    );
    assert.equal(
      findLibrary('libc.so.6', search(['/usr/lib64/libc.so.6', '/usr/lib/libc.so.6'])),
      '/usr/lib64/libc.so.6',
      'RPM-style multilib',
    );
    assert.equal(findLibrary('libc.so.6', search(['/usr/lib/libc.so.6'])), '/usr/lib/libc.so.6');
  });

  it('puts the conf directories before the defaults', () => {
    const files = ['/usr/local/lib/libssl.so.3', '/usr/lib/x86_64-linux-gnu/libssl.so.3'];
    assert.equal(findLibrary('libssl.so.3', search(files, { confDirs: ['/opt/none', '/usr/local/lib/'] })), '/usr/local/lib/libssl.so.3');
    assert.equal(findLibrary('libssl.so.3', search(files)), '/usr/lib/x86_64-linux-gnu/libssl.so.3');
  });

  it('searches DT_RUNPATH, expanding $ORIGIN, before the conf directories', () => {
    const files = ['/app/lib/libapp.so', '/usr/local/lib/libapp.so'];
    const opts = { runpath: ['/nowhere', '$ORIGIN/../lib'], confDirs: ['/usr/local/lib'] };
    assert.equal(findLibrary('libapp.so', search(files, opts)), '/app/lib/libapp.so');
    assert.equal(findLibrary('libapp.so', search(files, { ...opts, runpath: ['${ORIGIN}/../lib/'] })), '/app/lib/libapp.so');
    // $ORIGINAL is not $ORIGIN; $LIB and relative entries cannot be resolved from the image.
    const s = search(files, { ...opts, runpath: ['/x/$ORIGINAL', '$LIB/x', '/y/${PLATFORM}', 'lib', ''] });
    assert.equal(findLibrary('libapp.so', s), '/usr/local/lib/libapp.so');
    assert.deepEqual(s.asked, ['/x/$ORIGINAL/libapp.so', '/usr/local/lib/libapp.so']);
  });

  it('uses DT_RPATH only when there is no DT_RUNPATH', () => {
    const files = ['/opt/rpath/libx.so', '/opt/runpath/libx.so'];
    assert.equal(findLibrary('libx.so', search(files, { rpath: ['/opt/rpath'] })), '/opt/rpath/libx.so');
    assert.equal(findLibrary('libx.so', search(files, { rpath: ['/opt/rpath'], runpath: ['/opt/runpath'] })), '/opt/runpath/libx.so');
    // Even an empty DT_RUNPATH turns DT_RPATH off.
    assert.equal(findLibrary('libx.so', search(files, { rpath: ['/opt/rpath'], runpath: [''] })), undefined);
    assert.equal(findLibrary('libx.so', search(['/app/bin/libx.so'], { rpath: ['$ORIGIN'] })), '/app/bin/libx.so');
  });

  it('takes a soname with a slash as a path', () => {
    const files = ['/opt/plugins/libp.so', '/app/plugins/libp.so', '/usr/lib/libp.so'];
    assert.equal(findLibrary('/opt/plugins/libp.so', search(files)), '/opt/plugins/libp.so');
    assert.equal(findLibrary('$ORIGIN/../plugins/libp.so', search(files)), '/app/plugins/libp.so');
    assert.equal(findLibrary('//opt/./plugins/../plugins/libp.so', search(files)), '/opt/plugins/libp.so');
    // Never searched for in the directories, even when its basename is there.
    const missing = search(files);
    assert.equal(findLibrary('/missing/libp.so', missing), undefined);
    assert.deepEqual(missing.asked, ['/missing/libp.so']);
    assert.equal(findLibrary('plugins/libp.so', search(files)), undefined, 'relative to the working directory');
  });
});
