# Shared helpers for the setup scripts. Sourced, never run.
set -euo pipefail
SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_DIR="$(cd "$SCRIPTS_DIR/.." && pwd)"
# shellcheck source=versions.env
. "$SCRIPTS_DIR/versions.env"
# Everything built or downloaded lives outside the checkout, keyed by version, so a
# fresh clone on the same machine reuses it.
STEVEDORE_CACHE_DIR="${STEVEDORE_CACHE_DIR:-/var/cache/stevedore}"
NODE_HOME="$STEVEDORE_CACHE_DIR/node/$NODE_VERSION"
TOOLS_BIN="$STEVEDORE_CACHE_DIR/bin"
BASE_LAYOUT_DIR="$STEVEDORE_CACHE_DIR/base/debian-$BASE_SUITE-minbase-v$BASE_LAYOUT_VERSION"

# Go is installed under /usr/local/go on these machines; a bare environment may lack it on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing prerequisite: $1 ($2)"; }
is_root() { [ "$(id -u)" = 0 ]; }

# Put the pinned Node first on PATH (npm from the machine then runs on it too).
use_node() {
  if [ -x "$NODE_HOME/bin/node" ]; then export PATH="$NODE_HOME/bin:$PATH"; fi
  export PATH="$TOOLS_BIN:$PATH"
  local major
  major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
  [ "${major:-0}" -ge 22 ] || die "node >= 22 is required (run scripts/install-node.sh)"
}
