import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveNamedPolicy } from '../../src/admission/named-policy.js';
import { parseJobRequest } from '../../src/admission/parse-request.js';
import { AppError } from '../../src/errors/app-error.js';
import { submitToBody } from '../../src/grpc/jobs.grpc-controller.js';
import { namedPolicySchema, parseDuration, POLICY_NAME_PATTERN } from '../../src/policies/policy.schema.js';
import type { StoredPolicy } from '../../src/policies/policy-store.js';
import { compareVersions, parseRange, satisfies } from '../../src/policies/version-range.js';

const issues = (body: unknown) => {
  const parsed = namedPolicySchema.safeParse(body);
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('named policy schema', () => {
  it('accepts the limits, allow-list and the named rules', () => {
    assert.deepEqual(
      issues({
        max_critical: 0,
        max_high: 2,
        allow: [{ id: 'CVE-2021-23337', reason: 'not reachable', expires: '2099-01-01' }],
        only_fixable: true,
        fix_grace_days: 14,
        deny_packages: [
          { name: 'lodash', versions: '<4.17.21' },
          { name: '@scope/pkg' },
          { name: 'log4j-core', versions: '>=2.0 <2.17.1 || 1.2.17' },
        ],
        max_scan_age: '7d',
      }),
      [],
    );
  });

  it('refuses bad values, each on its field', () => {
    assert.match(issues({ max_high: -1 })[0]!, /^max_high/);
    assert.match(issues({ fix_grace_days: 1.5 })[0]!, /^fix_grace_days: must be a whole number of days/);
    assert.match(issues({ deny_packages: [{ name: 'lodash', versions: '<<1' }] })[0]!, /^deny_packages\.0\.versions: .*not a comparator/);
    assert.match(issues({ deny_packages: [{ name: 'lodash', versions: '1 || ' }] })[0]!, /empty alternative/);
    assert.match(issues({ deny_packages: [{ name: 'a b' }] })[0]!, /^deny_packages\.0\.name/);
    assert.match(issues({ deny_packages: [{ name: 'x', version: '1' }] })[0]!, /version/, 'unknown keys are refused');
    assert.match(issues({ max_scan_age: '7 days' })[0]!, /^max_scan_age: must be a whole number and a unit/);
    assert.match(issues({ max_scan_age: '400d' })[0]!, /at most 365d/);
    assert.match(issues({ ignore_unfixed: true })[0]!, /ignore_unfixed/, 'named policies say only_fixable');
  });

  it('parses durations and names', () => {
    assert.equal(parseDuration('30m'), 1_800_000);
    assert.equal(parseDuration('24h'), 86_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.throws(() => parseDuration('0d'));
    for (const good of ['prod', 'a', 'team-1-strict', 'x'.repeat(63)]) assert.ok(POLICY_NAME_PATTERN.test(good), good);
    for (const bad of ['', 'Prod', '-prod', 'pro_d', 'x'.repeat(64), 'a:b', 'a/b']) assert.ok(!POLICY_NAME_PATTERN.test(bad), bad);
  });
});

describe('version ranges', () => {
  it('orders versions as semver and dpkg do for the common shapes', () => {
    const ordered = ['0.9', '1.0~rc1', '1.0', '1.0-1', '1.0.1', '1.2.10', '1.10', '1:0.1'];
    for (let i = 0; i + 1 < ordered.length; i++)
      assert.equal(compareVersions(ordered[i]!, ordered[i + 1]!), -1, `${ordered[i]} < ${ordered[i + 1]}`);
    assert.equal(compareVersions('1.0.0-alpha', '1.0.0'), -1, 'a semver pre-release before its release');
    assert.equal(compareVersions('1.0.0-rc.1', '1.0.0-rc.2'), -1);
    assert.equal(compareVersions('v1.2.3', '1.2.3'), 0);
    assert.equal(compareVersions('1.34+dfsg-1.2+deb12u1', '1.34+dfsg-1.2+deb12u2'), -1);
    assert.equal(compareVersions('99999999999999999999.1', '99999999999999999999.0'), 1, 'long digit runs compare as numbers');
  });

  it('matches exact versions, comparator lists and alternatives', () => {
    const r = parseRange('>=2.0 <2.17.1 || 1.2.17');
    assert.ok(satisfies('2.14.1', r));
    assert.ok(satisfies('1.2.17', r));
    assert.ok(!satisfies('2.17.1', r));
    assert.ok(!satisfies('1.2.16', r));
    assert.ok(satisfies('anything', parseRange('*')));
    assert.throws(() => parseRange(''), /1-256/);
    assert.throws(() => parseRange('>= 1.0'), /not a comparator/);
  });
});

describe('jobs naming a policy', () => {
  const stored: StoredPolicy = {
    name: 'prod',
    version: 2,
    created_at: '2026-12-01T00:00:00.000Z',
    updated_at: '2026-12-02T00:00:00.000Z',
    rules: { max_critical: 0, deny_packages: [{ name: 'lodash' }] },
  };
  const store = { get: (tenant: string, name: string) => Promise.resolve(tenant === 't1' && name === 'prod' ? stored : undefined) };
  const refusal = async (work: Promise<unknown>) => {
    const err = await work.then(
      () => assert.fail('accepted'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof AppError);
    return { status: err.kind, code: err.code, fields: (err.details as { fields: unknown }).fields };
  };

  it('accepts a name or an inline policy, and refuses a bad name or a snapshot sent by the client', () => {
    assert.equal((parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: 'prod' }) as { policy: unknown }).policy, 'prod');
    assert.deepEqual((parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: { max_high: 0 } }) as { policy: unknown }).policy, {
      max_high: 0,
    });
    assert.throws(() => parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: 'Prod!' }), AppError);
    assert.throws(
      () =>
        parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: 'prod', policy_snapshot: { name: 'prod', version: 9, rules: {} } }),
      AppError,
    );
  });

  it('takes gRPC policy_name as the name, and refuses it beside an inline policy', () => {
    assert.deepEqual(submitToBody({ action: 'scan', scan: { image: 'r.test/a:1', policy_name: 'prod', ignore_unfixed: false } }), {
      action: 'scan',
      image: 'r.test/a:1',
      policy: 'prod',
    });
    const build = submitToBody({ action: 'build', build: { tags: ['r.test/a:1'], scan: { policy_name: 'prod', scanners: [] } } });
    assert.deepEqual(build.scan, { policy: 'prod' });
    const both = submitToBody({ action: 'scan', scan: { image: 'r.test/a:1', policy_name: 'prod', policy: { max_high: 0 } } });
    assert.throws(() => parseJobRequest(both), /policy_name/);
  });

  it('records the snapshot of a known name, on a scan and on a build scan', async () => {
    const scan = await resolveNamedPolicy(parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: 'prod' }), 't1', store);
    assert.deepEqual((scan as { policy_snapshot?: unknown }).policy_snapshot, {
      name: 'prod',
      version: 2,
      updated_at: stored.updated_at,
      rules: stored.rules,
    });
    const build = await resolveNamedPolicy(
      parseJobRequest({ action: 'build', dockerfile_inline: 'FROM scratch\n', tags: ['r.test/a:1'], scan: { policy: 'prod' } }),
      't1',
      store,
    );
    assert.equal((build as { scan?: { policy_snapshot?: { version: number } } }).scan?.policy_snapshot?.version, 2);
    const inline = parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: { max_high: 0 } });
    assert.equal(await resolveNamedPolicy(inline, 't1', store), inline, 'inline policies pass untouched');
  });

  it('refuses an unknown name, and another tenant’s, as a 400 on the field', async () => {
    assert.deepEqual(
      await refusal(resolveNamedPolicy(parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: 'nope' }), 't1', store)),
      {
        status: 'invalid',
        code: 'VALIDATION_FAILED',
        fields: [{ path: 'policy', message: 'no policy named nope (PUT /v1/policies/nope first)' }],
      },
    );
    const other = await refusal(resolveNamedPolicy(parseJobRequest({ action: 'scan', image: 'r.test/a:1', policy: 'prod' }), 't2', store));
    assert.equal((other.fields as { path: string }[])[0]!.path, 'policy');
    const build = await refusal(
      resolveNamedPolicy(
        parseJobRequest({ action: 'build', dockerfile_inline: 'FROM scratch\n', tags: ['r.test/a:1'], scan: { policy: 'nope' } }),
        't1',
        store,
      ),
    );
    assert.equal((build.fields as { path: string }[])[0]!.path, 'scan.policy');
  });
});
