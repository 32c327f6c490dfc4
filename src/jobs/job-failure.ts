import { PlatformNotFoundError } from '../engines/registry/image-inspector.js';
import { RegistryError } from '../engines/registry/registry-errors.js';
import { InvalidReferenceError } from '../oci/references.js';

/** Why a job failed, with a stable code for clients (its `error`); `retryable` lets BullMQ try again. */
export class JobFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable = false,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}

/** Registry and reference errors as stable job error codes (shared with GET /v1/images/inspect). */
export function toInspectFailure(err: unknown): unknown {
  if (err instanceof RegistryError) {
    switch (err.kind) {
      case 'not_found':
        return new JobFailure('IMAGE_NOT_FOUND', err.message);
      case 'unauthorized':
        return new JobFailure('REGISTRY_UNAUTHORIZED', err.message);
      case 'unavailable':
        return new JobFailure('REGISTRY_UNAVAILABLE', err.message, true);
      // 'protocol' and 'forbidden' (a redirect, realm or DNS answer leading to an address
      // the server may not reach): the registry misbehaved, not the tenant.
      default:
        return new JobFailure('REGISTRY_ERROR', err.message);
    }
  }
  if (err instanceof PlatformNotFoundError) return new JobFailure('PLATFORM_NOT_FOUND', err.message, false, { platforms: err.available });
  if (err instanceof InvalidReferenceError) return new JobFailure('INVALID_REFERENCE', err.message);
  return err;
}
