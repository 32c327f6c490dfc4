/**
 * Validation of values that reach registries and tool command lines. Anything that
 * could be read as an option (leading '-') or escape a path is refused here, once.
 */
export class InvalidReferenceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidReferenceError';
  }
}

// From the OCI distribution spec: path components of lowercase alphanumerics with separators.
const REPOSITORY = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;

export function assertRepository(name: string): void {
  if (name.length > 255 || !REPOSITORY.test(name)) throw new InvalidReferenceError(`invalid repository name: ${JSON.stringify(name)}`);
}

export function assertTag(tag: string): void {
  if (!TAG.test(tag)) throw new InvalidReferenceError(`invalid tag: ${JSON.stringify(tag)}`);
}
