import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderResult } from '../../src/cli/client/render-results.js';

const D = (c: string) => `sha256:${c.repeat(64)}`;

describe('CLI rendering of signing results for multi-platform images', () => {
  it('sign of an index lists each platform manifest signed with it', () => {
    const lines = renderResult('sign', {
      signed: {
        reference: `r.example/app@${D('a')}`,
        digest: D('a'),
        key: 'release',
        platforms: [
          { platform: 'linux/amd64', digest: D('b') },
          { platform: 'linux/arm64', digest: D('c') },
        ],
      },
    });
    assert.deepEqual(lines, [
      `signed r.example/app@${D('a')} with key release`,
      `  and its linux/amd64 manifest ${D('b')}`,
      `  and its linux/arm64 manifest ${D('c')}`,
    ]);
    assert.deepEqual(renderResult('sign', { signed: { reference: 'r/x@d', digest: 'd', key: 'k' } }), ['signed r/x@d with key k']);
  });

  it('verify of an index reports each platform, naming the unsigned one and its attestations', () => {
    const lines = renderResult('verify', {
      verification: {
        verified: false,
        reason: 'platform manifests not signed by key release: linux/arm64',
        reference: 'r/x@d',
        key: 'release',
        attestations: [{ type: 'cyclonedx', verified: false, reason: 'linux/arm64: no matching attestations' }],
        platforms: [
          { platform: 'linux/amd64', digest: D('b'), verified: true, attestations: [{ type: 'cyclonedx', verified: true }] },
          {
            platform: 'linux/arm64',
            digest: D('c'),
            verified: false,
            reason: 'no signatures found',
            attestations: [{ type: 'cyclonedx', verified: false, reason: 'no matching attestations' }],
          },
        ],
      },
    });
    assert.deepEqual(lines, [
      'NOT verified r/x@d with key release: platform manifests not signed by key release: linux/arm64',
      `  linux/amd64 ${D('b')}: signed`,
      '    attestation cyclonedx: verified',
      `  linux/arm64 ${D('c')}: NOT signed (no signatures found)`,
      '    attestation cyclonedx: none',
    ]);
  });

  it('a pipeline build says which platform manifest carries which attestations', () => {
    const lines = renderResult('build', {
      build: { steps: [] },
      attestations: ['cyclonedx', 'vuln'],
      attested: [{ platform: 'linux/arm64', digest: D('c'), types: ['cyclonedx', 'vuln'] }],
    });
    assert.ok(lines.includes(`attested linux/arm64 ${D('c')}: cyclonedx, vuln`), lines.join('\n'));
    assert.ok(renderResult('build', { build: { steps: [] }, attestations: ['vuln'] }).includes('attested: vuln'));
  });
});
