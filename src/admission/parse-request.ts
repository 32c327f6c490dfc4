import { AppError } from '../errors/app-error.js';
import { invalidFields, validate } from '../errors/validation.js';
import { BUILD_LIMITS } from '../jobs/build-request.schema.js';
import { actionSchema, jobRequestSchema } from '../jobs/job-request.schema.js';
import type { JobRequest } from '../jobs/job-types.js';
import { InvalidReferenceError, parseImageReference } from '../oci/references.js';

/** Action first (an unknown action is named as such, not as a schema mismatch), then its schema. */
export function parseJobRequest(body: unknown): JobRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new AppError('invalid', 'VALIDATION_FAILED', 'invalid body: must be a JSON object', {
      fields: [{ path: 'body', message: 'must be a JSON object' }],
    });
  }
  validate(actionSchema, { action: (body as { action?: unknown }).action }, 'body');
  refuseHugeMaps(body as Record<string, unknown>);
  return withSeedRegistry(validate(jobRequestSchema, body, 'body'));
}

/** The actions whose `registry` names the registry of `image` (build and push give it other meanings). */
const IMAGE_REGISTRY_ACTIONS: ReadonlySet<JobRequest['action']> = new Set(['inspect', 'scan', 'sign', 'verify']);

/**
 * The seed's `registry` joined to `image` (`team/app:1` + `127.0.0.1:5000` →
 * `127.0.0.1:5000/team/app:1`), once, here: what is stored, checked against the key's
 * repositories and the registry guard, and run is the full reference, without `registry`.
 * An image naming a registry of its own keeps it only when `registry` names the same one.
 */
export function withSeedRegistry(request: JobRequest): JobRequest {
  if (!IMAGE_REGISTRY_ACTIONS.has(request.action) || !('registry' in request) || request.registry === undefined) return request;
  const { registry, ...rest } = request as JobRequest & { image: string; registry: string };
  const own = namedRegistry(rest.image);
  let joined: string;
  try {
    const wanted = parseImageReference(`${registry}/x`).registry;
    if (wanted === 'docker.io' && !/^(docker\.io|index\.docker\.io|registry-1\.docker\.io)$/.test(registry))
      throw new InvalidReferenceError(`${registry} is not a registry host: give one with a dot or a port, or localhost`);
    if (own !== undefined) {
      if (parseImageReference(rest.image).registry !== wanted)
        throw invalidFields([
          { path: 'registry', message: `image ${rest.image} names registry ${own}, not ${registry}: drop one of them or make them agree` },
        ]);
      return rest;
    }
    joined = `${registry}/${rest.image}`;
    parseImageReference(joined);
  } catch (err) {
    if (err instanceof InvalidReferenceError) throw invalidFields([{ path: 'registry', message: err.message }]);
    throw err;
  }
  return { ...rest, image: joined };
}

/** The registry an image reference spells out (Docker's rule: a first component with a dot or colon, or localhost), if any. */
function namedRegistry(image: string): string | undefined {
  const name = image.split('@')[0]!;
  const slash = name.indexOf('/');
  if (slash <= 0) return undefined;
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[') ? first : undefined;
}

/**
 * The schema bounds build_args and labels too, but only after checking every entry: a
 * 10 MB body of 400 000 build args kept the event loop busy for about a second. Counted
 * first, such a body is refused at once with the same answer.
 */
function refuseHugeMaps(body: Record<string, unknown>): void {
  for (const [field, max] of [
    ['build_args', BUILD_LIMITS.buildArgs],
    ['labels', BUILD_LIMITS.labels],
  ] as const) {
    const value = body[field];
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
    let n = 0;
    for (const _ in value) if (++n > max) break;
    if (n > max) throw invalidFields([{ path: field, message: `at most ${max} entries` }]);
  }
}
