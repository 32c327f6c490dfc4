import type { AppConfig } from '../config/config.js';
import type { Principal } from './principal.js';
import { AppError } from '../errors/app-error.js';

type Limits = { rate_limit_per_minute?: number; max_concurrent_jobs?: number };
const orUnlimited = (n: number | null | undefined) => (n === null || n === undefined || n === 0 ? Infinity : n);

/**
 * The limits a key creating another key may grant. The admin token: anything. A
 * tenant's own `admin` key: at most its own (its key's values, else the server's
 * default, else for the running-job cap the tenant's current one) and at most the
 * operator's ceilings (STEVEDORE_TENANT_MAX_RATE_LIMIT, _MAX_CONCURRENT_JOBS_CEILING),
 * so no tenant can lift what the operator set; above either → 403 LIMIT_FORBIDDEN
 * naming the field. A new key without `rate_limit_per_minute` whose server default
 * would exceed the bound gets the bound instead (as `repositories` copies the maker's).
 */
export function grantableLimits(
  asked: Limits,
  principal: Principal,
  config: Pick<AppConfig, 'tenancy'>,
  tenantCap: number | undefined,
): Limits {
  if (principal.root) return asked;
  const t = config.tenancy;
  const own = principal.limits ?? { rate_limit_per_minute: null, max_concurrent_jobs: null };
  const bounds = {
    rate_limit_per_minute: Math.min(orUnlimited(own.rate_limit_per_minute ?? t.apiKeyRateLimit), orUnlimited(t.tenantMaxRateLimit)),
    max_concurrent_jobs: Math.min(
      orUnlimited(own.max_concurrent_jobs ?? tenantCap ?? t.maxConcurrentJobs),
      orUnlimited(t.tenantMaxConcurrentJobs),
    ),
  };
  const refused = (['rate_limit_per_minute', 'max_concurrent_jobs'] as const).flatMap((field) => {
    const value = asked[field];
    return value !== undefined && value > bounds[field] ? [{ path: field, asked: value, limit: bounds[field] }] : [];
  });
  if (refused.length) {
    const first = refused[0]!;
    throw new AppError(
      'forbidden',
      'LIMIT_FORBIDDEN',
      `${first.path}: ${first.asked} is above what this API key may grant (${first.limit}); only the admin token can raise it`,
      { path: first.path, refused },
    );
  }
  const out = { ...asked };
  if (out.rate_limit_per_minute === undefined && orUnlimited(t.apiKeyRateLimit) > bounds.rate_limit_per_minute)
    out.rate_limit_per_minute = bounds.rate_limit_per_minute;
  return out;
}
