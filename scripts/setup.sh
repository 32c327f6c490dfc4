#!/usr/bin/env bash
# Installs whatever is missing on this machine and builds stevedore.
#   setup.sh         what `stevedore serve` needs (npm start): Node, serve's Debian packages,
#                    buildkitd/buildctl, trivy, cosign, the base image, npm ci, tsc
#   setup.sh --test  that, and what only the tests need (npm test): the Docker engine,
#                    chromium, python3-venv, the Docker CLI plugins compose and buildx
# Idempotent: every step checks first, so a second run takes seconds. Long steps print
# their elapsed time every 30 s; the end prints each step's time.
. "$(dirname "$0")/lib.sh"
with_test=false
case "${1:-}" in --test) with_test=true ;; "") ;; *) die "setup.sh: unknown argument $1 (--test)" ;; esac
started=$(date +%s)
STEVEDORE_STEP_LOG=$(mktemp)
export STEVEDORE_STEP_LOG
bg_pids=()
trap 'for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -f "$STEVEDORE_STEP_LOG"' EXIT

with_progress "Node" "$SCRIPTS_DIR/install-node.sh"
use_node
if $with_test; then
  with_progress "Debian packages" "$SCRIPTS_DIR/install-system.sh" --test
else
  with_progress "Debian packages" "$SCRIPTS_DIR/install-system.sh"
fi

# Side by side: the Go builds are CPU bound (both cores), the base image's debootstrap
# and npm ci mostly wait on the network and the disk. STEVEDORE_SETUP_PARALLEL=0 runs
# them one after the other.
cd "$PROJECT_DIR"
npm_ci() {
  # only when package-lock.json changed since the last install
  local stamp=node_modules/.stevedore-lock-hash want
  # A worktree sharing another checkout's node_modules through a symlink: npm ci would
  # empty the shared directory under everyone using it.
  if [ -L node_modules ]; then
    log "node_modules is a symlink to $(readlink node_modules): leaving it as it is (no npm ci)"
    return 0
  fi
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || return 0
  npm ci --no-audit --no-fund >&2 || die "npm ci failed"
  echo "$want" > "$stamp"
}
tools=(buildkitd buildctl cosign trivy)
if $with_test; then tools+=(compose buildx); fi
side=("base image:$SCRIPTS_DIR/base-image.sh" "npm ci:npm_ci")
if [ "${STEVEDORE_SETUP_PARALLEL:-1}" = 0 ]; then
  "$SCRIPTS_DIR/install-tools.sh" "${tools[@]}"
  for s in "${side[@]}"; do with_progress "${s%%:*}" "${s#*:}"; done
else
  for s in "${side[@]}"; do
    with_progress "${s%%:*}" "${s#*:}" & bg_pids+=($!)
  done
  tools_rc=0
  "$SCRIPTS_DIR/install-tools.sh" "${tools[@]}" || tools_rc=$?
  failed=()
  [ $tools_rc = 0 ] || failed+=("tools")
  for i in "${!bg_pids[@]}"; do
    wait "${bg_pids[$i]}" || failed+=("${side[$i]%%:*}")
  done
  bg_pids=()
  [ ${#failed[@]} = 0 ] || die "setup failed: ${failed[*]} (see above)"
fi

with_progress "compiling TypeScript" npx --no-install tsc -p tsconfig.json >&2 || die "TypeScript compilation failed"

log "versions:"
{
  echo "  node      $(node --version)"
  echo "  buildkitd $("$TOOLS_BIN/buildkitd" --version | awk '{print $3}')"
  echo "  buildctl  $("$TOOLS_BIN/buildctl" --version | awk '{print $3}')"
  echo "  trivy     $("$TOOLS_BIN/trivy" --version | sed -n 's/^Version: //p')"
  echo "  cosign    $("$TOOLS_BIN/cosign" version 2>&1 | sed -n 's/^GitVersion: *//p')"
  echo "  runc      $(runc --version | head -n1 | awk '{print $3}')"
  echo "  redis     $(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/')"
  echo "  registry  $(docker-registry --version 2>/dev/null | awk '{print $3}')"
  if $with_test; then
    echo "  dockerd   $(dockerd --version | sed -E 's/Docker version ([^,]+).*/\1/') · compose $(docker compose version --short 2>/dev/null) · buildx $(docker buildx version 2>/dev/null | awk '{print $2}')"
  fi
  echo "  base      $BASE_IMAGE_REPO:$BASE_IMAGE_TAG (${STEVEDORE_BASE_PLATFORMS//,/ + }) $(sed -n 's/.*"digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' "$BASE_LAYOUT_DIR/index.json" | head -n1), $(du -L -b "$BASE_LAYOUT_DIR/rootfs.tar.gz" | cut -f1) bytes compressed (amd64)"
} >&2
# Each step's own time; with the parallel setup the side steps overlap the Go builds, so
# they add up to more than the total.
if [ -s "$STEVEDORE_STEP_LOG" ]; then
  log "step times:"
  while IFS=$'\t' read -r secs label; do printf '  %8s  %s\n' "$(fmt_dur "$secs")" "$label" >&2; done < "$STEVEDORE_STEP_LOG"
fi
log "setup finished in $(fmt_dur $(($(date +%s) - started)))"
