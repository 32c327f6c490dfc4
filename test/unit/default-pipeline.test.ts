import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkBuildPolicy } from '../../src/admission/build-policy.js';
import { ConfigError, loadConfig, parseDefaultPipeline } from '../../src/config/config.js';
import { AppError } from '../../src/errors/app-error.js';
import { buildJobSchema } from '../../src/jobs/build-request.schema.js';
import type { JobRequest } from '../../src/jobs/job-types.js';
import { planPipeline } from '../../src/workers/sbom-stage.js';

describe('the default build pipeline (STEVEDORE_DEFAULT_PIPELINE)', () => {
  it('parses the grammar: stages, ! for mandatory, none; refuses anything else', () => {
    assert.deepEqual(parseDefaultPipeline('sbom,sign'), { sbom: 'on', sign: 'on' });
    assert.deepEqual(parseDefaultPipeline('sbom!,sign'), { sbom: 'required', sign: 'on' });
    assert.deepEqual(parseDefaultPipeline('sign!'), { sbom: 'off', sign: 'required' });
    assert.deepEqual(parseDefaultPipeline('none'), { sbom: 'off', sign: 'off' });
    assert.deepEqual(loadConfig({ STEVEDORE_CACHE_DIR: '/nonexistent' }).defaultPipeline, { sbom: 'on', sign: 'on' }, 'on by default');
    for (const bad of ['sbom,scan', 'sbom,sbom', 'sbom!!', 'sign,', 'none,sbom'])
      assert.throws(() => loadConfig({ STEVEDORE_DEFAULT_PIPELINE: bad }), ConfigError, bad);
  });

  it('plans: the policy when the request says nothing, the request where the policy allows it', () => {
    const on = parseDefaultPipeline('sbom,sign');
    assert.deepEqual(planPipeline({}, on), { sbom: true, sign: true, signRequired: false });
    assert.deepEqual(planPipeline({ sbom: false, sign: false }, on), {
      sbom: false,
      sign: false,
      signRequired: false,
      sbomOff: 'sbom: false',
      signOff: 'sign: false',
    });
    assert.deepEqual(planPipeline({ sign: { key: 'release' } }, on), { sbom: true, sign: true, signRequired: true });
    const off = parseDefaultPipeline('none');
    assert.deepEqual(planPipeline({}, off), {
      sbom: false,
      sign: false,
      signRequired: false,
      sbomOff: 'not in the server policy',
      signOff: 'not in the server policy',
    });
    assert.deepEqual(planPipeline({ sbom: true, sign: true }, off), { sbom: true, sign: true, signRequired: true });
    // Mandatory wins even over a request that slipped past admission (an api with another policy).
    assert.deepEqual(planPipeline({ sbom: false, sign: false }, parseDefaultPipeline('sbom!,sign!')), {
      sbom: true,
      sign: true,
      signRequired: true,
    });
  });

  it('admission: switching off a mandatory stage is a 400 naming the policy; an optional one is accepted', () => {
    const request = buildJobSchema.parse({
      action: 'build',
      dockerfile_inline: 'FROM scratch\n',
      tags: ['127.0.0.1:5000/team/app:1'],
      sbom: false,
      sign: false,
    }) as JobRequest;
    const config = { buildPlatforms: ['linux/amd64'], buildSecrets: {}, contextRoot: undefined };
    assert.doesNotThrow(() => checkBuildPolicy(request, { ...config, defaultPipeline: parseDefaultPipeline('sbom,sign') }));
    try {
      checkBuildPolicy(request, { ...config, defaultPipeline: parseDefaultPipeline('sbom!,sign!') });
      assert.fail('accepted');
    } catch (err) {
      assert.ok(err instanceof AppError);
      const fields = (err.details as { fields: { path: string; message: string }[] }).fields;
      assert.deepEqual(
        fields.map((f) => f.path),
        ['sbom', 'sign'],
      );
      assert.match(fields[0]!.message, /STEVEDORE_DEFAULT_PIPELINE includes sbom!/);
    }
  });

  it('the request schema: sbom is a boolean, and sbom: true needs a pushed image', () => {
    const base = { action: 'build', dockerfile_inline: 'FROM scratch\n' };
    assert.equal(buildJobSchema.safeParse({ ...base, sbom: 'yes' }).success, false);
    const unpushed = buildJobSchema.safeParse({ ...base, sbom: true });
    assert.equal(unpushed.success, false);
    assert.ok(unpushed.error.issues.some((i) => i.path[0] === 'sbom'));
    assert.equal(buildJobSchema.safeParse({ ...base, sbom: false, sign: false }).success, true, 'opting out needs nothing pushed');
  });
});
