/**
 * What went wrong talking to a registry; jobs map each kind to an error code. `forbidden`:
 * the registry (a redirect, a token realm) or its DNS led to an address the server may
 * not reach; nothing was sent there.
 */
export type RegistryErrorKind = 'not_found' | 'unauthorized' | 'unavailable' | 'protocol' | 'forbidden';

export class RegistryError extends Error {
  constructor(
    readonly kind: RegistryErrorKind,
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RegistryError';
  }
}
