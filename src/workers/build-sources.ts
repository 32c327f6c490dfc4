import { mkdtemp, realpath, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { BuildRequest } from '../jobs/actions.js';
import { JobFailure } from '../jobs/job-failure.js';

export interface ResolvedSources {
  context: { dir: string } | { git: string };
  dockerfileDir?: string;
  dockerfileName: string;
  /** Scratch directory for this build (inline Dockerfile, metadata file); removed after. */
  scratch: string;
  cleanup(): Promise<void>;
}

/** Resolves `path` under `root`, refusing anything (symlinks included) that leaves it. */
async function inside(root: string, path: string, what: string): Promise<string> {
  const realRoot = await realpath(root);
  const target = resolve(realRoot, path);
  let real: string;
  try {
    real = await realpath(target);
  } catch {
    throw new JobFailure('DOCKERFILE_NOT_FOUND', `${what} ${path} does not exist`);
  }
  const rel = relative(realRoot, real);
  if (rel.startsWith('..') || rel.startsWith(sep) || rel === '..')
    throw new JobFailure('INVALID_CONTEXT', `${what} ${path} leaves its root`);
  return real;
}

/**
 * Where a build's context and Dockerfile come from: an uploaded context, a git URL,
 * an inline Dockerfile, or (seed compatibility) a path under STEVEDORE_CONTEXT_ROOT.
 */
export async function resolveSources(
  request: BuildRequest,
  deps: { uploadDir: (digest: string) => Promise<string>; contextRoot?: string },
): Promise<ResolvedSources> {
  const scratch = await mkdtemp(join(tmpdir(), 'stevedore-build-'));
  const cleanup = () => rm(scratch, { recursive: true, force: true });
  try {
    let context: ResolvedSources['context'];
    let dockerfileDir: string | undefined;
    let dockerfileName = 'Dockerfile';
    if (request.context && 'upload' in request.context) {
      const dir = await deps.uploadDir(request.context.upload);
      context = { dir };
      if (!request.dockerfile_inline) {
        const file = await inside(dir, request.dockerfile_path ?? 'Dockerfile', 'dockerfile_path');
        dockerfileDir = dirname(file);
        dockerfileName = basename(file);
      }
    } else if (request.context && 'git' in request.context) {
      const { git, ref, subdir } = request.context;
      context = { git: `${git}${ref || subdir ? `#${ref ?? ''}${subdir ? `:${subdir}` : ''}` : ''}` };
      if (!request.dockerfile_inline) dockerfileName = request.dockerfile_path ?? 'Dockerfile';
    } else if (request.dockerfile_path && !request.dockerfile_inline) {
      if (!deps.contextRoot) throw new JobFailure('INVALID_CONTEXT', 'no STEVEDORE_CONTEXT_ROOT on this server');
      const file = await inside(deps.contextRoot, request.dockerfile_path, 'dockerfile_path');
      context = { dir: dirname(file) };
      dockerfileDir = dirname(file);
      dockerfileName = basename(file);
    } else {
      const empty = join(scratch, 'context');
      await mkdir(empty);
      context = { dir: empty };
    }
    if (request.dockerfile_inline) {
      dockerfileDir = join(scratch, 'dockerfile');
      await mkdir(dockerfileDir);
      await writeFile(join(dockerfileDir, 'Dockerfile'), request.dockerfile_inline);
      dockerfileName = 'Dockerfile';
    }
    return { context, dockerfileDir, dockerfileName, scratch, cleanup };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
