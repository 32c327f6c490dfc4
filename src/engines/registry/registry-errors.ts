/** What went wrong talking to a registry; jobs map each kind to an error code. */
export type RegistryErrorKind = 'not_found' | 'unauthorized' | 'unavailable' | 'protocol';

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
