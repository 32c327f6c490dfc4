import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveNamedPolicy } from '../../src/admission/named-policy.js';
import { parseJobRequest } from '../../src/admission/parse-request.js';
import type { ImageVerdict } from '../../src/catalogue/image-verdict.js';
import type { VerdictService } from '../../src/catalogue/verdict-service.js';
import type { CosignClient } from '../../src/engines/cosign/cosign-client.js';
import type { SigningKeys } from '../../src/engines/cosign/signing-keys.js';
import type { ImageInspector } from '../../src/engines/registry/image-inspector.js';
import type { RegistryResolver } from '../../src/engines/registry/registry-resolver.js';
import { AppError } from '../../src/errors/app-error.js';
import { JobFailure } from '../../src/jobs/job-failure.js';
import type { JobRecord } from '../../src/jobs/job-types.js';
import { canonicalJson } from '../../src/jobs/job.service.js';
import { submitToBody } from '../../src/grpc/jobs.grpc-controller.js';
import type { PolicySnapshot } from '../../src/policies/policy.schema.js';
import type { JobContext } from '../../src/workers/processor.js';
import { PushProcessor } from '../../src/workers/push.processor.js';
import { SignProcessor } from '../../src/workers/sign.processor.js';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const SNAPSHOT: PolicySnapshot = { name: 'prod', version: 3, updated_at: '2026-12-01T00:00:00Z', rules: { max_scan_age: '1h' } };

const verdict = (passed: boolean): ImageVerdict => ({
  digest: DIGEST,
  policy: { name: 'prod', version: 3 },
  passed,
  evaluated_at: '2026-12-03T12:00:00.000Z',
  scan_job_id: '00000000-0000-4000-8000-000000000001',
  scanned_at: '2026-12-03T09:00:00.000Z',
  db_updated_at: null,
  scan_age_seconds: 10_800,
  rules_failed: passed ? [] : ['max_scan_age'],
  violations: passed
    ? []
    : [
        {
          id: 'max_scan_age',
          package: '',
          severity: null,
          rule: 'max_scan_age=1h',
          detail: 'the latest scan is 3 h old',
          platform: 'linux/amd64',
        },
      ],
  allowed: [],
  expired: [],
  limits: {},
  platforms: [],
  unscanned_platforms: [],
});

/** Fakes that record what was asked: the side effects (cosign sign, a registry client for the copy) must not happen on a failed verdict. */
function harness(passed: boolean) {
  const calls: string[] = [];
  const verdicts: Pick<VerdictService, 'judge'> = {
    judge: async (tenant, digest, snapshot, repository) => {
      calls.push(`judge ${tenant} ${digest} ${snapshot.name}@${snapshot.version} ${repository}`);
      return verdict(passed);
    },
  };
  const inspector = {
    resolveDigest: async (image: string) => {
      calls.push(`resolve ${image}`);
      return DIGEST;
    },
    inspect: async () => ({ digest: DIGEST, manifest_digest: DIGEST, platforms: ['linux/amd64'] }),
  } as unknown as ImageInspector;
  const cosign = { sign: async (pinned: string) => void calls.push(`sign ${pinned}`) } as unknown as CosignClient;
  const keys = { get: () => ({ name: 'release' }), keys: [{ name: 'release' }] } as unknown as SigningKeys;
  const registries = {
    clientFor: (host: string) => {
      calls.push(`registry ${host}`);
      throw new Error('the copy started');
    },
  } as unknown as RegistryResolver;
  const progress: string[] = [];
  const ctx = <A extends 'sign' | 'push'>(action: A, request: Record<string, unknown>) =>
    ({
      job: { id: 'j1', tenant: 't1', action, request } as unknown as JobRecord<A>,
      signal: new AbortController().signal,
      progress: async (m: string) => void progress.push(m),
      fence: async (what: string) => void progress.push(`fence: ${what}`),
    }) as unknown as JobContext<A>;
  return {
    calls,
    progress,
    sign: (request: Record<string, unknown>) => new SignProcessor({ cosign, keys, inspector }, verdicts).process(ctx('sign', request)),
    push: (request: Record<string, unknown>) => new PushProcessor(registries, inspector, verdicts).process(ctx('push', request)),
  };
}

const failure = async (p: Promise<unknown>): Promise<JobFailure> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof JobFailure, String(err));
  return err;
};

describe('sign and push with a named policy', () => {
  it('sign: a failed verdict of the resolved digest is POLICY_FAILED naming the rules and the age; cosign never runs', async () => {
    const h = harness(false);
    const err = await failure(h.sign({ image: 'r.test/team/app:1', policy: 'prod', policy_snapshot: SNAPSHOT }));
    assert.equal(err.code, 'POLICY_FAILED');
    assert.match(
      err.message,
      /policy prod failed on sha256:d+ \(max_scan_age; latest scan 2026-12-03T09:00:00.000Z, 3 h old\): nothing was signed/,
    );
    assert.deepEqual(err.details.rules_failed, ['max_scan_age']);
    assert.equal(err.details.scan_age_seconds, 10_800);
    assert.equal(err.details.digest, DIGEST);
    assert.equal((err.details.policy as ImageVerdict).passed, false);
    assert.deepEqual(h.calls, ['resolve r.test/team/app:1', `judge t1 ${DIGEST} prod@3 r.test/team/app`]);
  });

  it('sign: a passed verdict signs; no policy asks for no verdict', async () => {
    const h = harness(true);
    await h.sign({ image: 'r.test/team/app:1', policy: 'prod', policy_snapshot: SNAPSHOT });
    assert.deepEqual(h.calls.slice(1), [`judge t1 ${DIGEST} prod@3 r.test/team/app`, `sign r.test/team/app@${DIGEST}`]);
    assert.ok(h.progress.some((m) => m.startsWith('policy prod (version 3) passed')));
    const plain = harness(false);
    await plain.sign({ image: 'r.test/team/app:1' });
    assert.ok(!plain.calls.some((c) => c.startsWith('judge')));
    assert.ok(plain.calls.includes(`sign r.test/team/app@${DIGEST}`));
  });

  it('push: judged before the copy starts; a missing snapshot is POLICY_NOT_FOUND', async () => {
    const h = harness(false);
    const err = await failure(
      h.push({ image: 'r.test/team/app:1', destinations: ['r.test/prod/app:1'], policy: 'prod', policy_snapshot: SNAPSHOT }),
    );
    assert.equal(err.code, 'POLICY_FAILED');
    assert.match(err.message, /nothing was copied/);
    assert.ok(!h.calls.some((c) => c.startsWith('registry')), JSON.stringify(h.calls));
    assert.equal(
      (await failure(h.push({ image: 'r.test/team/app:1', destinations: ['r.test/prod/app:1'], policy: 'prod' }))).code,
      'POLICY_NOT_FOUND',
    );

    // Passed: the copy starts from the judged digest (the fake registry stops it there).
    const ok = harness(true);
    const copy = await failure(
      ok.push({ image: 'r.test/team/app:1', destinations: ['r.test/prod/app:1'], policy: 'prod', policy_snapshot: SNAPSHOT }),
    );
    assert.equal(copy.code, 'PUSH_FAILED');
    assert.deepEqual(ok.calls.slice(-1), ['registry r.test']);
  });
});

describe('the policy field of sign and push', () => {
  const store = {
    get: async (tenant: string, name: string) =>
      tenant === 't1' && name === 'prod' ? { ...SNAPSHOT, created_at: '2026-11-01T00:00:00Z' } : undefined,
  };

  it('takes a policy name only, resolves it into policy_snapshot, and refuses an unknown one on the field', async () => {
    for (const body of [
      { action: 'sign', image: 'r.test/a:1', policy: 'prod' },
      { action: 'push', image: 'r.test/a:1', destinations: ['r.test/b:1'], policy: 'prod' },
    ]) {
      const resolved = (await resolveNamedPolicy(parseJobRequest(body), 't1', store)) as { policy_snapshot?: PolicySnapshot };
      assert.deepEqual(resolved.policy_snapshot, SNAPSHOT);
      // The idempotency fingerprint is of what the caller sent: not of the snapshot admission added.
      assert.equal(canonicalJson(resolved), canonicalJson(body));
      const unknown = await resolveNamedPolicy(parseJobRequest(body), 't2', store).catch((e: unknown) => e);
      assert.ok(unknown instanceof AppError);
      assert.deepEqual((unknown.details as { fields: unknown }).fields, [
        { path: 'policy', message: 'no policy named prod (PUT /v1/policies/prod first)' },
      ]);
    }
    for (const policy of [{ max_high: 0 }, 'Prod!', '']) {
      const err = (() => {
        try {
          parseJobRequest({ action: 'sign', image: 'r.test/a:1', policy });
        } catch (e) {
          return e;
        }
      })();
      assert.ok(err instanceof AppError, JSON.stringify(policy));
      assert.equal((err.details as { fields: { path: string }[] }).fields[0]!.path, 'policy');
    }
    // gRPC's SignJob.policy / PushJob.policy are the same field.
    assert.deepEqual(submitToBody({ action: 'sign', sign: { image: 'r.test/a:1', key: '', registry: '', policy: 'prod' } }), {
      action: 'sign',
      image: 'r.test/a:1',
      policy: 'prod',
    });
    assert.throws(
      () => parseJobRequest({ action: 'push', image: 'r.test/a:1', registry: 'r2.test', policy: 'prod', policy_snapshot: SNAPSHOT }),
      AppError,
      'a client cannot send its own snapshot',
    );
  });
});
