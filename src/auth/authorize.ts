import { AppError } from '../errors/app-error.js';
import { AuthFailure, type Authenticator } from './authenticator.js';
import { hasScope, type Principal, type Scope } from './principal.js';

/**
 * The caller of a REST request, holding `scope`, or the AppError to answer with
 * (401, 403, or 429 whose details carry retry_after_seconds, which the error reply turns
 * into a Retry-After header). AuthGuard and the routes served outside Nest's pipeline
 * (api/submit-route.ts) both come here, so the two cannot drift apart.
 */
export async function authorize(authenticator: Authenticator, authorization: string | undefined, scope: Scope): Promise<Principal> {
  let principal: Principal;
  try {
    principal = await authenticator.authenticate(authorization);
  } catch (err) {
    if (!(err instanceof AuthFailure)) throw err;
    if (err.code === 'RATE_LIMITED')
      throw new AppError('rate_limited', 'RATE_LIMITED', err.message, { retry_after_seconds: err.retryAfterSeconds });
    throw new AppError('unauthenticated', 'UNAUTHORIZED', err.message);
  }
  if (!hasScope(principal, scope))
    throw new AppError('forbidden', 'FORBIDDEN', `this API key lacks the ${scope} scope`, { required_scope: scope });
  return principal;
}
