/**
 * Writes a multi-stage Dockerfile from a single-stage one: the original, untouched, is
 * the build stage (so its build cache serves it), and a runtime stage on a minimal base
 * gets the runtime packages, the files the build produced and the image settings the
 * original carried (ENV, WORKDIR, USER, EXPOSE, VOLUME, labels, STOPSIGNAL, ENTRYPOINT,
 * CMD), all taken from the built image's config, so they are exactly what ran before.
 * Pure.
 */
import { splitBlocks } from './dockerfile-rewrite.js';

/** The settings of an image's config a runtime stage carries over (OCI image config `config`). */
export interface ImageRunConfig {
  Env?: string[] | null;
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, unknown> | null;
  Labels?: Record<string, string> | null;
  Volumes?: Record<string, unknown> | null;
  StopSignal?: string;
}

export interface StageSplitInput {
  original: string;
  /** `debian:bookworm-slim`, `scratch`, … */
  base: string;
  /** Debian packages for the runtime stage (installed without recommends). */
  packages: string[];
  /** Absolute paths copied from the build stage, each to the same place. */
  copy: string[];
  config: ImageRunConfig;
}

export const BUILD_STAGE = 'stevedore-build';
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
/** Values written bare (WORKDIR, USER, EXPOSE, STOPSIGNAL): nothing the parser would expand or split. */
const BARE = /^[A-Za-z0-9._/:@%+-]+$/;

export class StageSplitError extends Error {}

/** A double-quoted Dockerfile word: `\`, `"` and `$` escaped; refuses newlines. */
function quoted(value: string): string {
  if (/[\r\n]/.test(value)) throw new StageSplitError('a value holds a line break');
  return `"${value.replace(/[\\"$]/g, (c) => `\\${c}`)}"`;
}

function bare(value: string, what: string): string {
  if (!BARE.test(value)) throw new StageSplitError(`${what} ${JSON.stringify(value)} cannot be written safely`);
  return value;
}

/** JSON is the exec form: no shell, no expansion; `$` is still expanded by COPY, so paths never hold one. */
const json = (words: string[]) => JSON.stringify(words).replace(/","/g, '", "');

export function writeStageSplit(input: StageSplitInput): string {
  const blocks = splitBlocks(input.original);
  const froms = blocks.filter((b) => b.keyword === 'FROM');
  const final = froms.at(-1);
  if (!final) throw new StageSplitError('the Dockerfile has no FROM');
  const alias = /\s+as\s+([A-Za-z0-9][A-Za-z0-9_.-]*)\s*$/i.exec(final.args)?.[1];
  const stage = alias ?? BUILD_STAGE;
  const build = blocks
    .map((b) => (b === final && !alias ? `FROM ${b.args} AS ${BUILD_STAGE}` : b.raw.join('\n')))
    .join('\n')
    .replace(/\n+$/, '');
  const c = input.config;
  const lines = [
    '',
    `# Runtime stage: only what the program needs (written and verified by stevedore optimize).`,
    `FROM ${bare(input.base, 'base image')}`,
  ];
  if (input.packages.length) {
    for (const p of input.packages)
      if (!PACKAGE.test(p)) throw new StageSplitError(`package ${JSON.stringify(p)} cannot be written safely`);
    lines.push(
      [
        'RUN apt-get update \\',
        `    && apt-get install -y --no-install-recommends ${input.packages.join(' ')} \\`,
        '    && rm -rf /var/lib/apt/lists/*',
      ].join('\n'),
    );
  }
  for (const path of input.copy) {
    if (!/^\/[A-Za-z0-9._+@%,=:/ -]*$/.test(path)) throw new StageSplitError(`path ${JSON.stringify(path)} cannot be copied safely`);
    lines.push(`COPY --from=${stage} ${json([path, path])}`);
  }
  for (const e of c.Env ?? []) {
    const eq = e.indexOf('=');
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.slice(0, eq))) continue;
    lines.push(`ENV ${e.slice(0, eq)}=${quoted(e.slice(eq + 1))}`);
  }
  for (const [k, v] of Object.entries(c.Labels ?? {})) lines.push(`LABEL ${quoted(k)}=${quoted(v)}`);
  if (c.WorkingDir) lines.push(`WORKDIR ${bare(c.WorkingDir, 'WORKDIR')}`);
  const ports = Object.keys(c.ExposedPorts ?? {});
  if (ports.length) lines.push(`EXPOSE ${ports.map((p) => bare(p, 'port')).join(' ')}`);
  const volumes = Object.keys(c.Volumes ?? {});
  if (volumes.length) lines.push(`VOLUME ${json(volumes.map((v) => bare(v, 'volume')))}`);
  if (c.StopSignal) lines.push(`STOPSIGNAL ${bare(c.StopSignal, 'STOPSIGNAL')}`);
  if (c.User) lines.push(`USER ${bare(c.User, 'USER')}`);
  if (c.Entrypoint?.length) lines.push(`ENTRYPOINT ${json(c.Entrypoint)}`);
  if (c.Cmd?.length) lines.push(`CMD ${json(c.Cmd)}`);
  return `${build}\n${lines.join('\n')}\n`;
}
