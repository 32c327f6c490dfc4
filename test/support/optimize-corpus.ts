/**
 * Naive Dockerfiles as a new user writes them (issue 18's corpus), shared by
 * test/integration/optimize-corpus.test.ts and bench/optimize-corpus.ts so the test checks
 * what the bench measures. Every case is inline (sources go in with BuildKit heredocs), starts
 * FROM debian:bookworm-slim (the mirror serves it offline) and installs the naive way:
 * `apt-get install -y` with recommends and without list cleanup. Only Debian's archive, PyPI
 * and the npm registry are fetched; versions are pinned so the two builds verify compares
 * install the same code.
 *
 * `commands` are the extra checks verify runs in the original and in the rewrite (outputs
 * compared); `multiStage` says whether a verified multi-stage rewrite must be offered (false:
 * the program needs a build-only file at run time, so the rewrite must fail its smoke test).
 */
export interface OptimizeCorpusCase {
  name: string;
  dockerfile: string;
  commands: string[][];
  multiStage: boolean;
  note: string;
}

// Prints its argv, so an extra check with arguments tells a wrong binary from the right one.
const HELLO_C = `#include <stdio.h>
int main(int argc, char **argv) {
  printf("hello");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\\n");
  return 0;
}`;

// This workplace's egress re-signs TLS with its own CA, which a RUN step does not trust; pip
// and npm are told to accept it (as a user behind such a proxy does) on that one command
// only, so nothing of it reaches the image. apt fetches over plain http and needs nothing.
const PIP_TRUST = '--trusted-host pypi.org --trusted-host files.pythonhosted.org';
const NPM_TRUST = '--strict-ssl=false';

const C_INSTALL = 'RUN apt-get update && apt-get install -y gcc libc6-dev make';

export const OPTIMIZE_CORPUS: OptimizeCorpusCase[] = [
  {
    name: 'c',
    note: 'gcc + libc6-dev + make (with recommends) to compile one C file; the binary needs only libc6',
    multiStage: true,
    commands: [
      ['hello', 'x'],
      ['hello', 'a b', 'c'],
    ],
    dockerfile: `FROM debian:bookworm-slim
${C_INSTALL}
COPY <<'EOF' /src/hello.c
${HELLO_C}
EOF
RUN gcc -O2 -o /usr/local/bin/hello /src/hello.c
CMD ["hello"]
`,
  },
  {
    name: 'python-pip',
    note: 'python3-pip (recommends bring build-essential and python3-dev) to pip-install tabulate; runs on python3 alone',
    multiStage: true,
    commands: [['python3', '-c', 'import tabulate; print(tabulate.__name__, tabulate.__version__)']],
    dockerfile: `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y python3-pip
RUN pip install --break-system-packages ${PIP_TRUST} tabulate==0.9.0
WORKDIR /app
COPY <<'EOF' /app/app.py
from tabulate import tabulate

print(tabulate([["apples", 3], ["pears", 5]], headers=["fruit", "count"]))
EOF
CMD ["python3", "app.py"]
`,
  },
  {
    name: 'node-npm',
    note: "Debian's nodejs + npm (npm depends on hundreds of node-* packages) to npm-install ms; runs on nodejs alone",
    multiStage: true,
    commands: [['node', '-e', "console.log(require('ms')('2h'))"]],
    dockerfile: `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y nodejs npm
WORKDIR /app
RUN npm install ${NPM_TRUST} ms@2.1.3
COPY <<'EOF' /app/app.js
const ms = require('ms');
console.log('one minute is', ms(60000), 'and one day is', ms('1d'), 'ms');
EOF
CMD ["node", "app.js"]
`,
  },
  {
    name: 'go',
    note: "Debian's golang-go (with recommends: gcc, g++) to build a hello program; the binary is static",
    multiStage: true,
    commands: [['hello', 'x']],
    dockerfile: `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y golang-go
WORKDIR /src
COPY <<'EOF' /src/go.mod
module example.com/hello

go 1.19
EOF
COPY <<'EOF' /src/main.go
package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	fmt.Println(strings.Join(append([]string{"hello from go"}, os.Args[1:]...), " "))
}
EOF
RUN go build -o /usr/local/bin/hello .
CMD ["hello"]
`,
  },
  {
    name: 'shell-tool',
    note: 'curl + git (with recommends: perl, openssh-client, krb5…) used only at build time to stamp a version into a sh script',
    multiStage: true,
    commands: [['sh', '-c', 'tool | grep -c v1.2.3']],
    // A fixed tag, not a commit hash: verify builds the original and the rewrite separately,
    // and a hash with the build's time in it would differ between the two.
    dockerfile: `FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y curl git
WORKDIR /src
COPY <<'EOF' /src/tool.in
#!/bin/sh
echo "tool @VERSION@"
EOF
RUN git init -q . && git add tool.in \\
 && git -c user.name=dev -c user.email=dev@example.com commit -qm init && git tag v1.2.3 \\
 && curl -fsS file:///src/tool.in | sed "s/@VERSION@/$(git describe --tags)/" > /usr/local/bin/tool \\
 && chmod +x /usr/local/bin/tool
CMD ["tool"]
`,
  },
  {
    name: 'needs-gcc',
    note: 'same install as c, but the default command shells out to gcc at run time: the stage split must fail its smoke test',
    multiStage: false,
    commands: [['hello', 'x']],
    dockerfile: `FROM debian:bookworm-slim
${C_INSTALL}
COPY <<'EOF' /src/hello.c
${HELLO_C}
EOF
RUN gcc -O2 -o /usr/local/bin/hello /src/hello.c
CMD ["sh", "-c", "hello && gcc -dumpversion"]
`,
  },
];
