#!/usr/bin/env bash
# Installs whatever is missing for stevedore on this machine and builds it.
# Idempotent: every step checks first, so a second run takes seconds.
. "$(dirname "$0")/lib.sh"
started=$(date +%s)
step() { local t0; t0=$(date +%s); "$@"; log "$(basename "$1") done in $(( $(date +%s) - t0 )) s"; }

step "$SCRIPTS_DIR/install-node.sh"
use_node
step "$SCRIPTS_DIR/install-system.sh"
step "$SCRIPTS_DIR/install-tools.sh"
step "$SCRIPTS_DIR/base-image.sh"

cd "$PROJECT_DIR"
# npm ci only when package-lock.json changed since the last install.
stamp=node_modules/.stevedore-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "npm ci"
  npm ci --no-audit --no-fund >&2 || die "npm ci failed"
  echo "$want" > "$stamp"
fi
log "compiling TypeScript"
npx --no-install tsc -p tsconfig.json >&2 || die "TypeScript compilation failed"

log "versions:"
{
  echo "  node      $(node --version)"
  echo "  buildkitd $("$TOOLS_BIN/buildkitd" --version | awk '{print $3}')"
  echo "  buildctl  $("$TOOLS_BIN/buildctl" --version | awk '{print $3}')"
  echo "  trivy     $("$TOOLS_BIN/trivy" --version | sed -n 's/^Version: //p')"
  echo "  cosign    $("$TOOLS_BIN/cosign" version 2>&1 | sed -n 's/^GitVersion: *//p')"
  echo "  compose   $(docker compose version --short 2>/dev/null) · buildx $(docker buildx version 2>/dev/null | awk '{print $2}')"
  echo "  runc      $(runc --version | head -n1 | awk '{print $3}')"
  echo "  redis     $(redis-server --version | sed -E 's/.* v=([^ ]+).*/\1/')"
  echo "  registry  $(docker-registry --version 2>/dev/null | awk '{print $3}')"
  echo "  dockerd   $(dockerd --version | sed -E 's/Docker version ([^,]+).*/\1/')"
  echo "  base      $BASE_IMAGE_REPO:$BASE_IMAGE_TAG (${STEVEDORE_BASE_PLATFORMS//,/ + }) $(sed -n 's/.*"digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' "$BASE_LAYOUT_DIR/index.json" | head -n1), $(du -L -b "$BASE_LAYOUT_DIR/rootfs.tar.gz" | cut -f1) bytes compressed (amd64)"
} >&2
log "setup finished in $(( $(date +%s) - started )) s"
