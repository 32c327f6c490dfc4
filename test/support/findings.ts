import type { Vulnerability } from '../../src/engines/trivy/trivy-report.js';

/** A normalised finding (engines/trivy/trivy-report.ts) for unit tests: `fixed` makes it fixable. */
export const finding = (
  id: string,
  pkg: string,
  version: string,
  severity: string,
  fixed: string | null = null,
  extra: Partial<Vulnerability> = {},
): Vulnerability => ({
  id,
  package: pkg,
  installed_version: version,
  fixed_version: fixed,
  severity: severity as Vulnerability['severity'],
  status: fixed ? 'fixed' : 'affected',
  title: '',
  url: null,
  cvss_score: null,
  target: 'debian 12',
  class: 'os-pkgs',
  layer_digest: null,
  ...extra,
});
