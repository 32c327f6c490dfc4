import { createParamDecorator, SetMetadata, type ExecutionContext } from '@nestjs/common';

/** What an API key may do. `admin` implies the others (and manages keys). */
export const SCOPES = ['jobs:read', 'jobs:write', 'secrets:write', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

/** The tenant of the admin token: jobs it submits belong here. */
export const ADMIN_TENANT = 'default';
export const TENANT_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Who is calling: every job, context, secret and delivery belongs to `tenant`. */
export interface Principal {
  tenant: string;
  scopes: readonly Scope[];
  /** The API key's id; absent for the admin token. */
  keyId?: string;
  /** The admin token: manages every tenant's API keys (an `admin` key only its own tenant's). */
  root?: boolean;
  /** The key's repository patterns (docs/tenancy.md); absent: the server's default for its tenant. */
  repositories?: readonly string[];
  /** The key's own limits as stored (null: the server's default); absent for the admin token. */
  limits?: { rate_limit_per_minute: number | null; max_concurrent_jobs: number | null };
}

export const hasScope = (principal: Principal, scope: Scope) => principal.scopes.includes('admin') || principal.scopes.includes(scope);

export const REQUIRED_SCOPE = 'stevedore:scope';
/** The scope a route needs; routes without one need `admin`. */
export const RequireScope = (scope: Scope) => SetMetadata(REQUIRED_SCOPE, scope);

/** The authenticated caller (set by AuthGuard). */
export const CurrentPrincipal = createParamDecorator((_data: unknown, ctx: ExecutionContext): Principal => {
  const principal = ctx.switchToHttp().getRequest<{ principal?: Principal }>().principal;
  if (!principal) throw new Error('CurrentPrincipal used on a route without AuthGuard');
  return principal;
});
