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
# Platforms the seeded base image holds (an image index). linux/amd64 is always one
# (the Docker engine imports it); the others are debootstrapped for their Debian
# architecture with the second stage under QEMU. Another set gets its own cache
# directory; src/runtime/base-platforms.ts names the same one (a unit test checks).
STEVEDORE_BASE_PLATFORMS="${STEVEDORE_BASE_PLATFORMS:-linux/amd64,linux/arm64}"
# Debian's architecture for a platform (bookworm's release architectures; riscv64 is
# a Debian port only from trixie on).
debian_arch() {
  case "$1" in
    linux/amd64) echo amd64 ;; linux/arm64 | linux/arm64/v8) echo arm64 ;; linux/arm/v7) echo armhf ;;
    linux/ppc64le) echo ppc64el ;; linux/s390x) echo s390x ;; linux/386) echo i386 ;; linux/mips64le) echo mips64el ;;
    *) return 1 ;;
  esac
}
# The qemu-user binary (binfmt_misc entry qemu-<name>) that runs a Debian architecture; none for i386, which x86-64 runs natively.
qemu_name() {
  case "$1" in arm64) echo aarch64 ;; armhf) echo arm ;; ppc64el) echo ppc64le ;; s390x) echo s390x ;; mips64el) echo mips64el ;; *) echo "" ;; esac
}
# The Debian architectures of STEVEDORE_BASE_PLATFORMS other than amd64, sorted, one per line.
base_foreign_arches() {
  local p a
  for p in ${STEVEDORE_BASE_PLATFORMS//,/ }; do
    a=$(debian_arch "$p") || { echo "unsupported:$p"; continue; }
    [ "$a" = amd64 ] || echo "$a"
  done | sort -u
}
base_layout_dir() {
  local foreign
  foreign=$(base_foreign_arches | paste -sd- -)
  if [ "$foreign" = arm64 ]; then echo "$STEVEDORE_CACHE_DIR/base/debian-$BASE_SUITE-minbase-v$BASE_LAYOUT_VERSION"
  else echo "$STEVEDORE_CACHE_DIR/base/debian-$BASE_SUITE-minbase-v$BASE_LAYOUT_VERSION-amd64${foreign:+-$foreign}"; fi
}
BASE_LAYOUT_DIR="$(base_layout_dir)"

# Go is installed under /usr/local/go on these machines; a bare environment may lack it on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then export PATH="$PATH:/usr/local/go/bin"; fi

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "missing prerequisite: $1 ($2)"; }
is_root() { [ "$(id -u)" = 0 ]; }

# Progress of long steps. A first run spends minutes in single commands (`go build` of
# trivy, debootstrap) that print nothing for long stretches: with_progress prints
# "[setup] LABEL … 2m30s" every STEVEDORE_PROGRESS_INTERVAL seconds (30) while one runs,
# and records its time in $STEVEDORE_STEP_LOG (setup.sh prints the summary).
fmt_dur() { if [ "$1" -ge 60 ]; then printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); else printf '%ds' "$1"; fi; }
record_step() { # LABEL SECONDS
  if [ -n "${STEVEDORE_STEP_LOG:-}" ]; then printf '%s\t%s\n' "$2" "$1" >> "$STEVEDORE_STEP_LOG"; fi
}
with_progress() { # LABEL COMMAND...
  local label=$1 t0 ticker rc=0
  shift
  t0=$(date +%s)
  log "$label …"
  # The ticker kills its own sleep on TERM, so no sleep outlives it.
  (
    s=
    trap '[ -z "$s" ] || kill "$s" 2>/dev/null; exit 0' TERM
    while :; do
      sleep "${STEVEDORE_PROGRESS_INTERVAL:-30}" & s=$!
      wait "$s"
      log "$label … $(fmt_dur $(($(date +%s) - t0)))"
    done
  ) &
  ticker=$!
  # A subshell: a `die` inside the command ends it, not this shell, so the ticker is always stopped.
  ("$@") || rc=$?
  kill "$ticker" 2>/dev/null || true
  wait "$ticker" 2>/dev/null || true
  local took=$(($(date +%s) - t0))
  record_step "$label" "$took"
  if [ $rc = 0 ]; then log "$label: done in $(fmt_dur $took)"; else log "$label: failed after $(fmt_dur $took)"; fi
  return $rc
}

# Put the pinned Node first on PATH (npm from the machine then runs on it too).
use_node() {
  if [ -x "$NODE_HOME/bin/node" ]; then export PATH="$NODE_HOME/bin:$PATH"; fi
  export PATH="$TOOLS_BIN:$PATH"
  local major
  major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
  [ "${major:-0}" -ge 22 ] || die "node >= 22 is required (run scripts/install-node.sh)"
}
