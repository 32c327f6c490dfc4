import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { analyzeDockerfile, type Suggestion } from '../../../src/analysis/dockerfile/index.js';
import { compiles } from '../../../src/analysis/dockerfile/rules/cross-compile.js';
import { parseShell } from '../../../src/analysis/dockerfile/shell.js';
import { CROSS_DOCKERFILE, EMULATED_DOCKERFILE } from '../../support/hello-c.js';

const ID = 'compile-under-emulation';
const lines = (...l: string[]) => `${l.join('\n')}\n`;
const found = (text: string): Suggestion[] => analyzeDockerfile(text).filter((s) => s.id === ID);
const one = (text: string): Suggestion => {
  const all = found(text);
  assert.equal(all.length, 1, JSON.stringify(all));
  return all[0]!;
};

const GO_BUILD_STAGE = lines(
  'FROM golang:1.22 AS build',
  'WORKDIR /src',
  'COPY go.mod go.sum ./',
  'RUN go mod download',
  'COPY . .',
  'RUN CGO_ENABLED=0 go build -o /out/server ./cmd/server',
  'FROM gcr.io/distroless/static-debian12',
  'COPY --from=build /out/server /server',
  'ENTRYPOINT ["/server"]',
);

describe('compile-under-emulation', () => {
  it('rewrites a Go build stage to run on the build platform and cross-compile for TARGETOS/TARGETARCH', () => {
    const s = one(GO_BUILD_STAGE);
    assert.equal(s.severity, 'info');
    assert.equal(s.line, 1);
    assert.match(s.detail, /QEMU/);
    assert.match(s.detail, /`go build` on line 6/);
    assert.equal(
      s.fix,
      lines(
        'FROM --platform=$BUILDPLATFORM golang:1.22 AS build',
        'WORKDIR /src',
        'COPY go.mod go.sum ./',
        'RUN go mod download',
        'COPY . .',
        // The ARG comes after the module download, so that step stays shared by all targets.
        'ARG TARGETOS TARGETARCH',
        'RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -o /out/server ./cmd/server',
      ).trimEnd(),
    );
  });

  it('warns that cross-compiling turns cgo off when the Go build does not disable it', () => {
    const s = one(GO_BUILD_STAGE.replace('CGO_ENABLED=0 go build', 'go build'));
    assert.match(s.fix, /turns cgo off/);
    assert.match(s.fix, /RUN GOOS=\$TARGETOS GOARCH=\$TARGETARCH go build -o \/out\/server/);
    const viaEnv = one(
      GO_BUILD_STAGE.replace('WORKDIR /src', 'ENV CGO_ENABLED=0\nWORKDIR /src').replace('CGO_ENABLED=0 go build', 'go build'),
    );
    assert.doesNotMatch(viaEnv.fix, /cgo/);
  });

  it('gives a Debian C stage the cross gcc recipe, an Alpine one tonistiigi/xx', () => {
    const debian = one(
      lines(
        'FROM debian:bookworm-slim AS build',
        'RUN apt-get update && apt-get install -y gcc make',
        'COPY . /src',
        'RUN make -C /src',
        'FROM debian:bookworm-slim',
        'COPY --from=build /src/app /app',
      ),
    );
    assert.equal(debian.line, 1);
    assert.match(debian.detail, /`make` on line 4/);
    assert.match(debian.fix, /^FROM --platform=\$BUILDPLATFORM debian:bookworm-slim AS build$/m);
    assert.match(debian.fix, /gcc-aarch64-linux-gnu libc6-dev-arm64-cross/);
    assert.match(debian.fix, /ARG TARGETARCH/);
    assert.match(debian.fix, /arm64\) CC=aarch64-linux-gnu-gcc/);
    const alpine = one(
      lines('FROM alpine:3.20 AS build', 'RUN apk add build-base && gcc -o /app app.c', 'FROM alpine:3.20', 'COPY --from=build /app /app'),
    );
    assert.match(alpine.fix, /tonistiigi\/xx/);
    assert.match(alpine.fix, /xx-clang/);
  });

  it('moves a JVM build to the build platform without TARGETARCH: bytecode is the same everywhere', () => {
    const s = one(
      lines(
        'FROM maven:3-eclipse-temurin-21 AS build',
        'COPY . /src',
        'RUN mvn -B -f /src package',
        'FROM eclipse-temurin:21-jre',
        'COPY --from=build /src/target/app.jar /app.jar',
      ),
    );
    assert.match(s.fix, /^FROM --platform=\$BUILDPLATFORM maven:3-eclipse-temurin-21 AS build$/m);
    assert.doesNotMatch(s.fix, /ARG TARGET/);
    assert.match(s.fix, /bytecode/);
  });

  it('in a single-stage build says the stage must be split first, and sketches the split', () => {
    const s = one(
      lines('FROM golang:1.22', 'WORKDIR /src', 'COPY . .', 'RUN go build -o /usr/local/bin/app .', 'EXPOSE 8080', 'CMD ["app"]'),
    );
    assert.match(s.title, /final image/);
    assert.match(s.detail, /Split it first/);
    assert.match(s.fix, /^FROM --platform=\$BUILDPLATFORM golang:1.22 AS build$/m);
    // The runtime settings move to the new final stage, which copies the build's -o output.
    const [build, final] = s.fix.split(/\n(?=# the final stage)/);
    assert.doesNotMatch(build!, /CMD|EXPOSE/);
    assert.match(final!, /^FROM <runtime base/m);
    assert.match(final!, /^COPY --from=build \/usr\/local\/bin\/app \/usr\/local\/bin\/app$/m);
    assert.match(final!, /^EXPOSE 8080\nCMD \["app"\]$/m);
    // The emulated hello.c of the integration test and the bench is one of these.
    assert.match(one(EMULATED_DOCKERFILE).title, /final image/);
  });

  it('fires for an explicit --platform=$TARGETPLATFORM (the default, spelled out)', () => {
    const s = one(GO_BUILD_STAGE.replace('FROM golang', 'FROM --platform=$TARGETPLATFORM golang'));
    assert.match(s.fix, /^FROM --platform=\$BUILDPLATFORM golang:1.22 AS build$/m);
  });

  it('does not fire when the stage already runs on the build platform (or a fixed one), also inherited', () => {
    assert.deepEqual(found(GO_BUILD_STAGE.replace('FROM golang', 'FROM --platform=$BUILDPLATFORM golang')), []);
    assert.deepEqual(found(GO_BUILD_STAGE.replace('FROM golang', 'FROM --platform=${BUILDPLATFORM} golang')), []);
    assert.deepEqual(found(GO_BUILD_STAGE.replace('FROM golang', 'FROM --platform=linux/amd64 golang')), []);
    const inherited = GO_BUILD_STAGE.replace(
      'FROM golang:1.22 AS build',
      'FROM --platform=$BUILDPLATFORM golang:1.22 AS sdk\nFROM sdk AS build',
    );
    assert.deepEqual(found(inherited), []);
    assert.deepEqual(found(CROSS_DOCKERFILE), []);
  });

  it('does not fire without a compiler, or for a stage the final image does not use', () => {
    assert.deepEqual(found(lines('FROM golang:1.22 AS deps', 'RUN go mod download', 'FROM alpine:3.20', 'COPY --from=deps /go /go')), []);
    assert.deepEqual(
      found(lines('FROM node:22 AS deps', 'RUN npm ci', 'FROM node:22-slim', 'COPY --from=deps /node_modules /node_modules')),
      [],
    );
    assert.deepEqual(
      found(lines('FROM debian:bookworm-slim', 'RUN apt-get update && apt-get install -y --no-install-recommends curl')),
      [],
    );
    const windows = lines(
      'FROM mcr.microsoft.com/dotnet/sdk:8.0-nanoserver-ltsc2022 AS build',
      'RUN dotnet publish -c Release -o /out',
      'FROM mcr.microsoft.com/dotnet/runtime:8.0-nanoserver-ltsc2022',
      'COPY --from=build /out /app',
    );
    assert.deepEqual(found(windows), [], 'Windows images are not emulated');
    assert.equal(found(windows.replace(/-nanoserver-ltsc2022/g, '')).length, 1);
    const unused = lines('FROM golang:1.22 AS tools', 'RUN go build -o /t ./tools', 'FROM alpine:3.20', 'COPY app /app');
    assert.deepEqual(found(unused), []);
    // ... but a stage reached through COPY --from by index or RUN --mount=from counts.
    assert.equal(found(unused.replace('COPY app /app', 'COPY --from=0 /t /t')).length, 1);
    assert.equal(found(unused.replace('COPY app /app', 'RUN --mount=from=tools,source=/t,target=/t /t')).length, 1);
  });

  it('can be suppressed like any rule', () => {
    assert.deepEqual(found(`# stevedore-ignore ${ID}\n${GO_BUILD_STAGE}`), []);
    assert.deepEqual(found(GO_BUILD_STAGE.replace('FROM golang', `# stevedore-ignore ${ID}\nFROM golang`)), []);
  });

  it('knows the compilers and build tools, and not their neighbours', () => {
    const tool = (script: string) => compiles(parseShell(script)[0]!);
    for (const [script, want] of [
      ['gcc -O2 -o app app.c', 'c'],
      ['/usr/bin/g++-12 -c x.cc', 'c'],
      ['aarch64-linux-gnu-gcc x.c', 'c'],
      ['clang --version', 'c'],
      ['make -j4', 'c'],
      ['cmake --build build', 'c'],
      ['./configure --prefix=/usr', 'c'],
      ['go build ./...', 'go'],
      ['go install golang.org/x/tools/gopls@latest', 'go'],
      ['cargo build --release', 'rust'],
      ['rustc main.rs', 'rust'],
      ['mvn -B package', 'java'],
      ['./gradlew bootJar', 'java'],
      ['javac Main.java', 'java'],
      ['dotnet publish -c Release', 'dotnet'],
      ['npm run build', 'node'],
      ['yarn build:prod', 'node'],
      ['pnpm run build', 'node'],
    ] as const)
      assert.equal(tool(script), want, script);
    for (const script of [
      'go mod download',
      'go test ./...',
      'cargo fetch',
      'mvn dependency:go-offline',
      'npm ci',
      'npm run test',
      'yarn install',
      'dotnet restore',
      'apt-get install -y gcc',
      'gccgo-wrapper',
      'occ',
    ])
      assert.equal(tool(script), undefined, script);
  });
});
