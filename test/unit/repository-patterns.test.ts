import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canonicalRepository, matchesPattern, normalizePattern, patternCovers } from '../../src/auth/repository-patterns.js';
import { checkJobRepositories, repositoryRefusal, repositoryTargets } from '../../src/admission/repository-policy.js';
import type { JobRequest } from '../../src/jobs/job-types.js';
import { AppError } from '../../src/errors/app-error.js';

const REG = 'registry.example:5000';

describe('repository patterns', () => {
  it('normalises patterns like references: Docker Hub canonical, host lowercased, no tags', () => {
    assert.equal(normalizePattern('debian'), 'docker.io/library/debian');
    assert.equal(normalizePattern('library/*'), 'docker.io/library/*');
    assert.equal(normalizePattern('team-a/**'), 'docker.io/team-a/**');
    assert.equal(normalizePattern('index.docker.io/debian'), 'docker.io/library/debian');
    assert.equal(normalizePattern('Registry.Example:5000/team-a/*'), `${REG}/team-a/*`);
    assert.equal(normalizePattern('*/team-a/**'), '*/team-a/**');
    assert.equal(normalizePattern('127.0.0.1:*/x'), '127.0.0.1:*/x');
    assert.equal(normalizePattern(`${REG}/**`), `${REG}/**`);
    assert.equal(normalizePattern('localhost/app'), 'localhost/app');
  });

  it('refuses patterns that are not repository patterns', () => {
    for (const bad of [
      '',
      ' ',
      'a b',
      `${REG}/team-a/app:1`,
      `${REG}/app@sha256:${'a'.repeat(64)}`,
      'debian:12',
      '**',
      `${REG}/**/x`,
      `${REG}/a**`,
      `${REG}/Team`,
      `${REG}//x`,
      `${REG}/`,
      'bad host!/x',
      `${REG}/-x`,
      'x'.repeat(301),
    ]) {
      assert.throws(() => normalizePattern(bad), /pattern|invalid|`\*\*`/, JSON.stringify(bad));
    }
  });

  it('matches `*` within one path segment and a last `**` at any depth', () => {
    const cases: [string, string, boolean][] = [
      [`${REG}/team-a/*`, `${REG}/team-a/app:1`, true],
      [`${REG}/team-a/*`, `${REG}/team-a/app@sha256:${'b'.repeat(64)}`, true],
      [`${REG}/team-a/*`, `${REG}/team-a/sub/app:1`, false],
      [`${REG}/team-a/*`, `${REG}/team-a:1`, false],
      [`${REG}/team-a/*`, `${REG}/team-ab/app`, false],
      [`${REG}/team-a/**`, `${REG}/team-a/sub/deeper/app`, true],
      [`${REG}/team-a/**`, `${REG}/team-a`, false],
      [`${REG}/team-a/app`, `${REG}/team-a/app:latest`, true],
      [`${REG}/team-a/app`, `${REG}/team-a/app2`, false],
      [`${REG}/team-*/app`, `${REG}/team-b/app`, true],
      [`${REG}/team-a/*`, `other.example:5000/team-a/app`, false],
      [`${REG}/team-a/*`, `registry.example/team-a/app`, false],
      ['*/team-a/**', `${REG}/team-a/app`, true],
      ['*/team-a/**', 'team-a/app', true], // docker.io/team-a/app
      ['*/**', 'debian', true],
      ['debian', 'docker.io/library/debian:bookworm-slim', true],
      ['debian', 'index.docker.io/library/debian', true],
      ['library/*', 'debian:12', true],
      ['REGISTRY.example:5000/x', `${REG}/x`, true],
      ['127.0.0.1:*/team-a/*', '127.0.0.1:5000/team-a/app', true],
      ['127.0.0.1:*/team-a/*', 'localhost:5000/team-a/app', false],
    ];
    for (const [pattern, ref, expected] of cases) assert.equal(matchesPattern(pattern, ref), expected, `${pattern} ~ ${ref}`);
  });

  it('stays fast on a pattern built to backtrack', () => {
    const started = performance.now();
    assert.equal(matchesPattern(`${REG}/${'*a'.repeat(100)}*b`, `${REG}/${'a'.repeat(250)}`), false);
    // Backtracking would take years; a sub-millisecond match gets 2 s for a loaded machine's pauses.
    assert.ok(performance.now() - started < 2_000, `${performance.now() - started} ms`);
  });

  it('canonicalises references the same way', () => {
    assert.equal(canonicalRepository('debian:bookworm-slim'), 'docker.io/library/debian');
    assert.equal(canonicalRepository('Registry.Example:5000/a/b:1'), `${REG}/a/b`);
  });

  it('knows when one pattern lies inside another (soundly)', () => {
    const yes: [string, string][] = [
      [`${REG}/team-a/**`, `${REG}/team-a/app`],
      [`${REG}/team-a/**`, `${REG}/team-a/*`],
      [`${REG}/team-a/**`, `${REG}/team-a/sub/**`],
      [`${REG}/team-a/**`, `${REG}/team-a/**`],
      [`${REG}/team-a/*`, `${REG}/team-a/app`],
      [`${REG}/team-a/*`, `${REG}/team-a/*`],
      [`${REG}/team-a/*`, `${REG}/team-a/app-*`],
      ['*/team-a/**', `${REG}/team-a/x`],
    ];
    const no: [string, string][] = [
      [`${REG}/team-a/*`, `${REG}/team-a/**`], // one segment does not hold every depth
      [`${REG}/team-a/*`, `${REG}/team-a/sub/app`],
      [`${REG}/team-a/app-*`, `${REG}/team-a/*`],
      [`${REG}/team-a/**`, `${REG}/team-b/app`],
      [`${REG}/team-a/**`, `${REG}/team-a`],
      [`${REG}/team-a/**`, '*/team-a/**'],
      [`${REG}/team-a/app`, `${REG}/team-a/*`],
    ];
    for (const [outer, inner] of yes) assert.equal(patternCovers(outer, inner), true, `${outer} ⊇ ${inner}`);
    for (const [outer, inner] of no) assert.equal(patternCovers(outer, inner), false, `${outer} ⊉ ${inner}`);
  });
});

describe('repository policy', () => {
  const config = {
    registryMirror: '127.0.0.1:5000',
    registryListen: '127.0.0.1:5000',
    repositories: { tenantDefault: [], sharedRead: ['docker.io/library/**', '{mirror}/library/**'] },
  };
  const teamB = { tenant: 'team-b', repositories: [`${REG}/team-b/*`, '*/**'] };

  it('lists every repository a job reads and writes, with its field', () => {
    const targets = (r: object) => repositoryTargets(r as JobRequest).map((t) => `${t.access} ${t.path} ${t.reference}`);
    assert.deepEqual(targets({ action: 'build', tags: ['a.example/x:1', 'a.example/y:1'], push_to: ['b.example/z:1'] }), [
      'write tags.0 a.example/x:1',
      'write tags.1 a.example/y:1',
      'write push_to.0 b.example/z:1',
    ]);
    assert.deepEqual(targets({ action: 'build', registry: 'a.example', image: 'x:1' }), ['write image a.example/x:1']);
    assert.deepEqual(targets({ action: 'push', image: 'a.example/x:1', registry: 'b.example:5000' }), [
      'read image a.example/x:1',
      'write registry b.example:5000/x:1',
    ]);
    assert.deepEqual(targets({ action: 'push', image: 'a.example/x:1', destinations: ['c.example/y'] }), [
      'read image a.example/x:1',
      'write destinations.0 c.example/y',
    ]);
    assert.deepEqual(targets({ action: 'sign', image: 'a.example/x:1' }), ['write image a.example/x:1']);
    for (const action of ['inspect', 'scan', 'verify', 'optimize'])
      assert.deepEqual(targets({ action, image: 'a.example/x:1' }), ['read image a.example/x:1']);
    assert.deepEqual(targets({ action: 'optimize', dockerfile_inline: 'FROM scratch' }), []);
  });

  it('never lets a tenant write Docker Hub names or library/, whatever its patterns', () => {
    for (const reference of [
      'debian:bookworm-slim',
      'docker.io/team-b/app',
      '127.0.0.1:5000/library/debian:bookworm-slim',
      'localhost:5000/library/debian',
      `${REG}/library/x`,
    ]) {
      assert.match(repositoryRefusal({ reference, access: 'write' }, teamB, config) ?? '', /read-only|reserved/, reference);
      assert.equal(repositoryRefusal({ reference, access: 'write' }, { tenant: 'default', root: true }, config), undefined);
    }
  });

  it('allows shared reads, the key own patterns, and the tenant default without patterns', () => {
    const narrow = { tenant: 'team-b', repositories: [`${REG}/team-b/*`] };
    assert.equal(repositoryRefusal({ reference: 'debian:bookworm-slim', access: 'read' }, narrow, config), undefined);
    assert.equal(
      repositoryRefusal({ reference: '127.0.0.1:5000/library/debian:bookworm-slim', access: 'read' }, narrow, config),
      undefined,
    );
    assert.ok(repositoryRefusal({ reference: 'docker.io/team-a/app', access: 'read' }, narrow, config));
    assert.ok(repositoryRefusal({ reference: `${REG}/team-a/app`, access: 'read' }, narrow, config));
    assert.equal(repositoryRefusal({ reference: `${REG}/team-b/app`, access: 'write' }, narrow, config), undefined);
    const keyless = { tenant: 'team-c' };
    assert.match(repositoryRefusal({ reference: `${REG}/team-c/app`, access: 'write' }, keyless, config) ?? '', /no repositories/);
    const withDefault = { ...config, repositories: { ...config.repositories, tenantDefault: [`${REG}/{tenant}/**`] } };
    assert.equal(repositoryRefusal({ reference: `${REG}/team-c/app`, access: 'write' }, keyless, withDefault), undefined);
    assert.ok(repositoryRefusal({ reference: `${REG}/team-d/app`, access: 'write' }, keyless, withDefault));
    // A tenant name that is no repository segment makes the default grant nothing (not everything).
    assert.match(
      repositoryRefusal({ reference: `${REG}/team-x/app`, access: 'write' }, { tenant: 'team-' }, withDefault) ?? '',
      /no repositories/,
    );
  });

  it('answers 403 REPOSITORY_FORBIDDEN naming the field and the reference', () => {
    const narrow = { tenant: 'team-b', repositories: [`${REG}/team-b/*`] };
    try {
      checkJobRepositories({ action: 'build', tags: [`${REG}/team-b/ok:1`, `${REG}/team-a/app:1`], push_to: ['debian:x'] }, narrow, config);
      assert.fail('not refused');
    } catch (err) {
      assert.ok(err instanceof AppError);
      assert.equal(err.kind, 'forbidden');
      assert.equal(err.code, 'REPOSITORY_FORBIDDEN');
      assert.equal(err.details.path, 'tags.1');
      assert.equal(err.details.reference, `${REG}/team-a/app:1`);
      assert.deepEqual(
        (err.details.refused as { path: string }[]).map((r) => r.path),
        ['tags.1', 'push_to.0'],
      );
    }
  });
});
