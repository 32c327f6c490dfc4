/**
 * One small C program and the two ways of building it for several platforms, shared by
 * test/integration/multiarch.test.ts and bench/cross-compile.ts so the test checks what
 * the bench times. The program says which machine it runs on (uname, which qemu-user
 * reports as the emulated one) and which it was compiled for (the compiler's macros).
 */
export const HELLO_C = `#include <stdio.h>
#include <sys/utsname.h>

#if defined(__aarch64__)
#define BUILT_FOR "aarch64"
#elif defined(__x86_64__)
#define BUILT_FOR "x86_64"
#else
#define BUILT_FOR "other"
#endif

int main(void) {
  struct utsname u;
  if (uname(&u) != 0) return 1;
  printf("hello from %s (built for %s)\\n", u.machine, BUILT_FOR);
  return 0;
}
`;

/**
 * Emulated: every platform's RUN steps run on that platform's base, so the arm64 apt-get
 * and gcc run under QEMU. apt and gcc are separate steps so their times can be told apart;
 * the binaries are in the last layer. hello-static runs under qemu-aarch64 without a sysroot.
 */
export const EMULATED_DOCKERFILE = `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev && rm -rf /var/lib/apt/lists/*
COPY hello.c /src/hello.c
RUN gcc -O2 -o /usr/local/bin/hello /src/hello.c && gcc -O2 -static -o /usr/local/bin/hello-static /src/hello.c
CMD ["/usr/local/bin/hello"]
`;

/**
 * Cross-compiled: the build stage runs on the build machine's platform for every target
 * (one native apt step, shared by both targets since it does not depend on TARGETARCH),
 * and picks the compiler by TARGETARCH; the final stage only copies, so nothing runs
 * under QEMU.
 */
export const CROSS_DOCKERFILE = `FROM --platform=$BUILDPLATFORM debian:bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev gcc-aarch64-linux-gnu libc6-dev-arm64-cross \\
 && rm -rf /var/lib/apt/lists/*
COPY hello.c /src/hello.c
ARG TARGETARCH
RUN case "$TARGETARCH" in \\
      amd64) CC=x86_64-linux-gnu-gcc ;; \\
      arm64) CC=aarch64-linux-gnu-gcc ;; \\
      *) echo "no cross compiler for $TARGETARCH" >&2; exit 1 ;; \\
    esac \\
 && mkdir -p /out && $CC -O2 -o /out/hello /src/hello.c && $CC -O2 -static -o /out/hello-static /src/hello.c
FROM debian:bookworm-slim
COPY --from=build /out/ /usr/local/bin/
CMD ["/usr/local/bin/hello"]
`;

export const HELLO_PLATFORMS = ['linux/amd64', 'linux/arm64'];
