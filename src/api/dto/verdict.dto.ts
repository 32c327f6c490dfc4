/**
 * The OpenAPI shape of GET /v1/images/{digest}/verdict (catalogue/image-verdict.ts
 * ImageVerdict). Its fields follow a scan result's `policy`: violations, allowed,
 * expired, limits, rules_failed, at the top over all platforms and per platform.
 */
const time = { type: 'string', format: 'date-time' };
const nullableTime = { ...time, nullable: true };

const VIOLATION = {
  type: 'object',
  required: ['id', 'package', 'severity', 'rule'],
  properties: {
    id: {
      type: 'string',
      example: 'CVE-2023-45853',
      description: 'The advisory; for a rule not about a finding, the rule (no_scan, max_scan_age).',
    },
    package: { type: 'string' },
    severity: { type: 'string', nullable: true, enum: ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'UNKNOWN', null] },
    rule: { type: 'string', example: 'max_critical=0' },
    version: { type: 'string', description: 'A denied package: its version.' },
    detail: { type: 'string' },
  },
};

const ALLOWED = {
  type: 'array',
  description: 'Findings set aside by the allow-list or by an exception: exception_id and owner name the exception (POST /v1/exceptions).',
  items: {
    type: 'object',
    required: ['id', 'reason', 'expires'],
    properties: {
      id: { type: 'string', description: 'The vulnerability id it allowed.' },
      reason: { type: 'string' },
      expires: nullableTime,
      exception_id: { type: 'string', format: 'uuid' },
      owner: { type: 'string' },
    },
  },
};

const EXPIRED = {
  type: 'array',
  items: { type: 'object', properties: { id: { type: 'string' }, reason: { type: 'string' }, expires: time } },
};

const NOT_COUNTED = {
  type: 'object',
  description: 'Findings the policy left out: unfixed ones (only_fixable) and fixes still within fix_grace_days.',
  properties: {
    unfixed: { type: 'integer' },
    in_grace: {
      type: 'array',
      items: {
        type: 'object',
        properties: { id: { type: 'string' }, package: { type: 'string' }, fix_available_since: time, counts_from: time },
      },
    },
  },
};

const rulesFailed = {
  type: 'array',
  items: { type: 'string' },
  example: ['max_critical', 'max_scan_age'],
  description: 'Policy rules by name; also no_scan (never scanned) and scan_unavailable (a report gone past the job retention).',
};

export const VERDICT_SCHEMA = {
  type: 'object',
  required: ['digest', 'policy', 'passed', 'evaluated_at', 'scanned_at', 'db_updated_at', 'rules_failed', 'violations', 'platforms'],
  properties: {
    digest: { type: 'string', example: `sha256:${'0'.repeat(64)}` },
    policy: { type: 'object', properties: { name: { type: 'string' }, version: { type: 'integer' } } },
    passed: { type: 'boolean' },
    evaluated_at: time,
    scan_job_id: { type: 'string', nullable: true, description: 'The scan job judged (its reports are its artifacts).' },
    scanned_at: { ...nullableTime, description: "When the catalogue's latest scan of the digest finished; null: never scanned." },
    db_updated_at: { ...nullableTime, description: 'The Trivy DB that scan used.' },
    scan_age_seconds: { type: 'integer', nullable: true },
    rules_failed: rulesFailed,
    violations: {
      type: 'array',
      items: { ...VIOLATION, properties: { ...VIOLATION.properties, platform: { type: 'string', nullable: true } } },
    },
    allowed: ALLOWED,
    expired: EXPIRED,
    limits: { type: 'object', additionalProperties: { type: 'integer', nullable: true } },
    platforms: {
      type: 'array',
      description: 'Each platform the latest scan covered.',
      items: {
        type: 'object',
        properties: {
          platform: { type: 'string', example: 'linux/amd64' },
          manifest_digest: { type: 'string', nullable: true },
          report: { type: 'string', example: 'trivy-report.json' },
          passed: { type: 'boolean' },
          rules_failed: rulesFailed,
          violations: { type: 'array', items: VIOLATION },
          allowed: ALLOWED,
          expired: EXPIRED,
          not_counted: NOT_COUNTED,
        },
      },
    },
    unscanned_platforms: { type: 'array', items: { type: 'string' }, description: 'Platforms of the image the latest scan did not cover.' },
  },
};
