import { stat, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Action } from '../../jobs/job-types.js';
import {
  COMMON_HELP,
  POLICY_HELP,
  POLICY_OPTIONS,
  flag,
  int,
  list,
  noExtra,
  pairs,
  positional,
  scanOptions,
  str,
  type Options,
  type Values,
} from './args.js';
import { dockerfileField, readText, uploadDirectory } from './context-upload.js';
import { UsageError, type ApiClient } from './http.js';

/** One client command that submits a job of its action. */
export interface JobCommand {
  action: Action;
  usage: string;
  options: Options;
  /** The POST /v1/jobs body (without `action` and `timeout_seconds`); may upload a context first. */
  request(values: Values, positionals: string[], client: ApiClient): Promise<Record<string, unknown>>;
  /** After a succeeded job: e.g. write the optimized Dockerfile. Returns lines for stderr. */
  after?(values: Values, result: Record<string, unknown>): Promise<string[]>;
}

const BUILD_USAGE = `usage: stevedore build [DIR] [options]

Builds DIR (tarred and uploaded as the build context, less what its .dockerignore
excludes) with BuildKit on the server.
  -t, --tag REF         tag (repeatable); tagged builds are pushed unless --no-push
  -f, --file PATH       the Dockerfile (default DIR/Dockerfile; "-" reads stdin; a file
                        outside DIR is sent inline; without DIR, only the Dockerfile)
  --build-arg K=V       build argument (repeatable)
  --label K=V           image label (repeatable)
  --platform LIST       target platforms, e.g. linux/amd64,linux/arm64
  --target STAGE        the stage to build
  --secret NAME         a build secret by name (repeatable), for RUN --mount=type=secret,id=NAME
  --push, --no-push     push the tags (default: push when tagged)
  --no-cache            ignore the build cache
  --scan                scan the pushed image and gate it (with the policy options below)
  --sign                sign the pushed image (--key NAME for a non-default key)
  --key NAME            the signing key for --sign
  --push-to REF         copy the result there after the gates (repeatable)
${POLICY_HELP}
${COMMON_HELP}`;

const build: JobCommand = {
  action: 'build',
  usage: BUILD_USAGE,
  options: {
    tag: { type: 'string', short: 't', multiple: true },
    file: { type: 'string', short: 'f' },
    'build-arg': { type: 'string', multiple: true },
    label: { type: 'string', multiple: true },
    platform: { type: 'string', multiple: true },
    target: { type: 'string' },
    secret: { type: 'string', multiple: true },
    push: { type: 'boolean' },
    'no-push': { type: 'boolean' },
    'no-cache': { type: 'boolean' },
    scan: { type: 'boolean' },
    sign: { type: 'boolean' },
    key: { type: 'string' },
    'push-to': { type: 'string', multiple: true },
    ...POLICY_OPTIONS,
  },
  async request(v, positionals, client) {
    noExtra(positionals, 1);
    const dir = positionals[0];
    const file = str(v, 'file');
    if (!dir && !file) throw new UsageError(`give a context directory or -f DOCKERFILE`);
    if (flag(v, 'push') && flag(v, 'no-push')) throw new UsageError('--push and --no-push contradict each other');
    const scan = await scanOptions(v);
    if (scan && !flag(v, 'scan')) throw new UsageError('the policy options need --scan for a build');
    const dockerfile = await dockerfileField(file, dir);
    const body: Record<string, unknown> = { ...dockerfile };
    if (dir)
      body.context = {
        upload: (
          await uploadDirectory(
            client,
            dir,
            dockerfile.dockerfile_inline === undefined ? (dockerfile.dockerfile_path ?? 'Dockerfile') : undefined,
          )
        ).digest,
      };
    const tags = list(v, 'tag');
    if (tags) body.tags = tags;
    if (flag(v, 'push')) body.push = true;
    if (flag(v, 'no-push')) body.push = false;
    Object.assign(
      body,
      defined({
        build_args: pairs(v, 'build-arg'),
        labels: pairs(v, 'label'),
        platforms: list(v, 'platform'),
        target: str(v, 'target'),
        secrets: list(v, 'secret'),
        push_to: list(v, 'push-to'),
      }),
    );
    if (flag(v, 'no-cache')) body.no_cache = true;
    if (flag(v, 'scan')) body.scan = scan ?? {};
    if (flag(v, 'sign')) body.sign = str(v, 'key') ? { key: str(v, 'key') } : true;
    else if (str(v, 'key')) throw new UsageError('--key needs --sign for a build');
    return body;
  },
};

const imageCommand = (
  action: 'scan' | 'inspect' | 'sign' | 'verify',
  usage: string,
  options: Options,
  extra: (v: Values) => Promise<Record<string, unknown>>,
): JobCommand => ({
  action,
  usage,
  options,
  async request(v, positionals) {
    const image = positional(positionals, 0, 'IMAGE', usage);
    noExtra(positionals, 1);
    return { image, ...(await extra(v)) };
  },
});

const SCAN_USAGE = `usage: stevedore scan IMAGE [options]

Scans IMAGE with Trivy on the server; prints a severity table and the gate's verdict.
Exits 3 when the image is over its policy (on any of its platforms).
  --platform P      one platform of a multi-platform image (default all: each is scanned)
${POLICY_HELP}
${COMMON_HELP}`;

const scan = imageCommand('scan', SCAN_USAGE, { platform: { type: 'string' }, ...POLICY_OPTIONS }, async (v) => ({
  ...defined({ platform: str(v, 'platform') }),
  ...(await scanOptions(v)),
}));

const INSPECT_USAGE = `usage: stevedore inspect IMAGE [--platform P]

Reads IMAGE's manifest and config from its registry: digest, platforms, size, layers.
${COMMON_HELP}`;
const inspect = imageCommand('inspect', INSPECT_USAGE, { platform: { type: 'string' } }, async (v) =>
  defined({ platform: str(v, 'platform') }),
);

const SIGN_USAGE = `usage: stevedore sign IMAGE [--key NAME]

Signs IMAGE (by digest) with cosign and a server-side key (the default key without --key).
${COMMON_HELP}`;
const sign = imageCommand('sign', SIGN_USAGE, { key: { type: 'string' } }, async (v) => defined({ key: str(v, 'key') }));

const VERIFY_USAGE = `usage: stevedore verify IMAGE [--key NAME]

Checks IMAGE's cosign signature (and attestations) against a server-side key.
Exits 3 when it is not verified.
${COMMON_HELP}`;
const verify = imageCommand('verify', VERIFY_USAGE, { key: { type: 'string' } }, async (v) => defined({ key: str(v, 'key') }));

const PUSH_USAGE = `usage: stevedore push IMAGE DESTINATION...

Copies IMAGE (every platform, its signatures and attestations) to each DESTINATION.
${COMMON_HELP}`;
const push: JobCommand = {
  action: 'push',
  usage: PUSH_USAGE,
  options: {},
  async request(_v, positionals) {
    const image = positional(positionals, 0, 'IMAGE', PUSH_USAGE);
    positional(positionals, 1, 'DESTINATION', PUSH_USAGE);
    return { image, destinations: positionals.slice(1) };
  },
};

const OPTIMIZE_USAGE = `usage: stevedore optimize [DOCKERFILE | DIR] [--image IMAGE] [options]

Finds what makes an image big or slow to build: Dockerfile rules (a file is sent inline;
a directory is uploaded as the context, for .dockerignore and --verify) and/or layer
analysis of IMAGE.
  -f, --file PATH       the Dockerfile inside DIR (default Dockerfile)
  --image IMAGE         analyse this image's layers
  --platform P          the platform of a multi-platform IMAGE
  --target-size SIZE    e.g. 100MB: is it met, and what would close the gap
  --ignore LIST         rule ids to suppress
  --verify              build the original and the rewrites (safe, multi-stage) and compare them
  --check 'CMD ARGS'    with --verify: also run this command in both and compare (repeatable;
                        split on spaces, e.g. --check 'hello x')
  -o, --output FILE     write the optimized Dockerfile there
${COMMON_HELP}`;
const optimize: JobCommand = {
  action: 'optimize',
  usage: OPTIMIZE_USAGE,
  options: {
    file: { type: 'string', short: 'f' },
    image: { type: 'string' },
    platform: { type: 'string' },
    'target-size': { type: 'string' },
    ignore: { type: 'string', multiple: true },
    verify: { type: 'boolean' },
    check: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
  },
  async request(v, positionals, client) {
    noExtra(positionals, 1);
    const path = positionals[0];
    if (!path && !str(v, 'image')) throw new UsageError(`give a Dockerfile, a directory or --image`);
    const body: Record<string, unknown> = defined({
      image: str(v, 'image'),
      platform: str(v, 'platform'),
      target_size: str(v, 'target-size'),
      ignore: list(v, 'ignore'),
    });
    const checks = (Array.isArray(v.check) ? v.check : []).map(String).filter((c) => c.trim());
    if (checks.length && !flag(v, 'verify')) throw new UsageError('--check needs --verify');
    if (flag(v, 'verify')) body.verify = checks.length ? { commands: checks.map((c) => c.trim().split(/\s+/)) } : true;
    if (path) {
      if ((await stat(path).catch(() => undefined))?.isDirectory()) {
        body.context = { upload: (await uploadDirectory(client, path, posix.normalize(str(v, 'file') ?? 'Dockerfile'))).digest };
        if (str(v, 'file')) body.dockerfile_path = str(v, 'file');
      } else {
        if (str(v, 'file')) throw new UsageError('-f is for a Dockerfile inside a directory; give the file itself instead');
        body.dockerfile_inline = await readText(path);
      }
    }
    return body;
  },
  async after(v, result) {
    const output = str(v, 'output');
    if (!output) return [];
    if (typeof result.optimized_dockerfile !== 'string') return ['no optimized Dockerfile to write (no Dockerfile was analysed)'];
    await writeFile(output, result.optimized_dockerfile);
    return [`optimized Dockerfile written to ${output}`];
  },
};

export const JOB_COMMANDS: Record<string, JobCommand> = { build, scan, inspect, optimize, push, sign, verify };

/** `--timeout` as the request's timeout_seconds. */
export function timeoutField(v: Values): { timeout_seconds?: number } {
  const t = int(v, 'timeout', 1);
  return t === undefined ? {} : { timeout_seconds: t };
}

function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined));
}
