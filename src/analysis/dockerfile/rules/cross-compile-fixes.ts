import type { Instr, Stage } from '../model.js';
import { isAlpine, type RuleContext } from './rule.js';

/** What a compile stage builds with; picks the cross-compiling recipe. */
export type Toolchain = 'c' | 'go' | 'rust' | 'java' | 'dotnet' | 'node';

const GO_BUILD = /\bgo(\s+)(build|install)\b/g;
const RUNTIME = new Set(['CMD', 'ENTRYPOINT', 'EXPOSE', 'USER', 'HEALTHCHECK', 'STOPSIGNAL', 'VOLUME', 'LABEL']);
const EXAMPLE = '# example: adapt the packages, the build command and the output path to this stage';

/** The FROM line run on the build machine's platform (replacing an explicit `--platform=$TARGETPLATFORM`). */
export function onBuildPlatform(from: Instr, name = 'build'): string {
  const text = from.text
    .trim()
    .replace(/\s--platform=\S+/i, '')
    .replace(/^(\s*FROM)\s+/i, '$1 --platform=$BUILDPLATFORM ');
  return /\sAS\s+\S+\s*$/i.test(text) ? text : `${text} AS ${name}`;
}

/**
 * The stage rewritten for Go: on the build platform, `ARG TARGETOS TARGETARCH` just before
 * the first build (so module downloads above it are shared by all targets), and GOOS/GOARCH
 * in front of every `go build` / `go install`. Mechanical, but not applied by the verified
 * rewrite: cross-compiling turns cgo off, which a program may need. Undefined when a build is
 * in exec form (nothing to prefix).
 */
function goStage(stage: Stage, runs: Instr[], split: boolean): { build: string; runtime: string[] } | undefined {
  if (runs.some((r) => r.exec || r.heredocs.length > 0)) return undefined;
  const lines = [onBuildPlatform(stage.from)];
  const runtime: string[] = [];
  let argDone = stage.instrs.some((i) => i.keyword === 'ARG' && i.props.some((p) => p.name === 'TARGETARCH'));
  for (const instr of stage.instrs) {
    // Splitting a final stage: what configures the running container moves to the new final stage.
    if (split && RUNTIME.has(instr.keyword)) runtime.push(instr.text.trim());
    else if (runs.includes(instr)) {
      if (!argDone) lines.push('ARG TARGETOS TARGETARCH');
      argDone = true;
      lines.push(
        /\bGOARCH=/.test(instr.text) ? instr.text.trim() : instr.text.trim().replace(GO_BUILD, 'GOOS=$TARGETOS GOARCH=$TARGETARCH go$1$2'),
      );
    } else lines.push(instr.text.trim());
  }
  return { build: lines.join('\n'), runtime };
}

/** Where the go builds write (`-o path`), so the final stage copies the right files. */
function goOutputs(ctx: RuleContext, runs: Instr[]): string[] {
  const outs = runs.flatMap((r) =>
    ctx.commands(r).flatMap((c) => {
      if (c.name !== 'go') return [];
      const at = c.words.indexOf('-o');
      if (at > 0 && c.words[at + 1]) return [c.words[at + 1]!];
      return c.words.flatMap((w) => (w.startsWith('-o=') ? [w.slice(3)] : []));
    }),
  );
  return outs.length ? [...new Set(outs)] : ['/go/bin/'];
}

const cgoOff = (runs: Instr[]) => runs.every((r) => /\bCGO_ENABLED=0\b/.test(r.text) || r.vars.get('CGO_ENABLED') === '0');

function cRecipe(stage: Stage): string[] {
  if (isAlpine(stage))
    return [
      '# tonistiigi/xx wraps apk and clang for the target platform',
      'COPY --from=tonistiigi/xx / /',
      'RUN apk add --no-cache clang lld make',
      'ARG TARGETPLATFORM',
      'RUN xx-apk add --no-cache gcc musl-dev',
      'RUN xx-clang -O2 -o /out/app app.c && xx-verify /out/app   # make CC=xx-clang, cmake $(xx-clang --print-cmake-defines)',
    ];
  return [
    '# native compilers for both targets; this step does not depend on the target, so it runs once',
    'RUN apt-get update && apt-get install -y --no-install-recommends \\',
    '      gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross && rm -rf /var/lib/apt/lists/*',
    'ARG TARGETARCH',
    'RUN case "$TARGETARCH" in \\',
    '      amd64) CC=x86_64-linux-gnu-gcc ;; \\',
    '      arm64) CC=aarch64-linux-gnu-gcc ;; \\',
    '      *) echo "no cross compiler for $TARGETARCH" >&2; exit 1 ;; \\',
    '    esac \\',
    ' && mkdir -p /out && $CC -O2 -o /out/app app.c   # or: make CC=$CC, cmake -DCMAKE_C_COMPILER=$CC, clang --target=aarch64-linux-gnu',
  ];
}

const RECIPES: Record<Exclude<Toolchain, 'c' | 'go'>, string[]> = {
  rust: [
    'RUN apt-get update && apt-get install -y --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross \\',
    ' && rustup target add x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu',
    'ENV CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc',
    'ARG TARGETARCH',
    'RUN case "$TARGETARCH" in amd64) T=x86_64-unknown-linux-gnu ;; arm64) T=aarch64-unknown-linux-gnu ;; *) exit 1 ;; esac \\',
    ' && cargo build --release --target "$T" && mkdir -p /out && cp "target/$T/release/app" /out/app',
  ],
  java: ['# JVM bytecode is the same on every platform: no TARGETARCH needed, the stage runs once for all targets', 'RUN mvn -B package'],
  dotnet: ['ARG TARGETARCH', 'RUN dotnet publish -c Release -a "$TARGETARCH" -o /out'],
  node: [
    '# the bundle is platform-independent; install native modules (node-gyp) for the target in the final stage, not here',
    'RUN npm ci && npm run build',
  ],
};

/** A concrete fix: the Go stage rewritten, or the recipe for the toolchain under the stage's FROM. */
export function crossCompileFix(ctx: RuleContext, stage: Stage, toolchain: Toolchain, runs: Instr[], opts: { split: boolean }): string {
  let body: string;
  const notes: string[] = [];
  const go = toolchain === 'go' ? goStage(stage, runs, opts.split) : undefined;
  if (go) {
    body = go.build;
    if (!cgoOff(runs))
      notes.push(
        '# Cross-compiling turns cgo off. Add CGO_ENABLED=0 if the program does not need cgo; if it does, install a',
        '# cross C compiler (gcc-aarch64-linux-gnu) and set CC=aarch64-linux-gnu-gcc when TARGETARCH is arm64.',
      );
  } else if (toolchain === 'go') {
    body = [
      EXAMPLE,
      onBuildPlatform(stage.from),
      'ARG TARGETOS TARGETARCH',
      'RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/app .',
    ].join('\n');
  } else {
    body = [EXAMPLE, onBuildPlatform(stage.from), ...(toolchain === 'c' ? cRecipe(stage) : RECIPES[toolchain])].join('\n');
  }
  const tail = opts.split
    ? [
        '',
        '# the final stage: a runtime base for the target platform (no --platform), only the build output copied in',
        'FROM <runtime base, e.g. debian:bookworm-slim or gcr.io/distroless/static-debian12>',
        ...(go ? goOutputs(ctx, runs) : ['/out/']).map((o) => `COPY --from=build ${o} ${o.endsWith('/') ? '/usr/local/bin/' : o}`),
        ...(go?.runtime ?? []),
      ]
    : [];
  return [...notes, body, ...tail].join('\n');
}
