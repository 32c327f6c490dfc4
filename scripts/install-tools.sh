#!/usr/bin/env bash
# Builds buildkitd, buildctl, trivy, cosign, and the Docker CLI plugins compose and
# buildx from their Go modules at pinned versions.
# Each binary is cached under $STEVEDORE_CACHE_DIR/tools/<name>-<version>/ and linked
# into $STEVEDORE_CACHE_DIR/bin, so a second run on the same machine takes seconds.
. "$(dirname "$0")/lib.sh"
need go "Go builds buildkit, trivy and cosign from the Go module proxy"

# Why not `go install MOD/cmd/X@V`: buildkit's go.mod has exclude directives, which
# `go install pkg@version` refuses. Building inside the downloaded module, as the main
# module, uses the module's own go.mod and go.sum exactly as its release does.
build_tool() {
  local name=$1 version=$2 module=$3 pkg=$4 ldflags=$5 goexperiment=${6:-}
  local dest="$STEVEDORE_CACHE_DIR/tools/$name-$version"
  if [ ! -x "$dest/$name" ]; then
    log "building $name $version from $module (slow the first time: minutes for trivy)"
    local src work
    src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [ -n "$src" ] && [ -d "$src" ] || die "go mod download $module@$version failed"
    work=$(mktemp -d)
    cp -r "$src/." "$work/" && chmod -R u+w "$work"
    if ! (cd "$work" && GOEXPERIMENT=$goexperiment GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$work/out/$name" "./$pkg") >&2; then
      rm -rf "$work"; die "go build of $name $version failed"
    fi
    mkdir -p "$dest.tmp" && mv "$work/out/$name" "$dest.tmp/$name" && rm -rf "$work" "$dest" && mv "$dest.tmp" "$dest"
  fi
  mkdir -p "$TOOLS_BIN"
  ln -sfn "$dest/$name" "$TOOLS_BIN/$name"
}

build_tool buildkitd "$BUILDKIT_VERSION" github.com/moby/buildkit cmd/buildkitd "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION"
build_tool buildctl "$BUILDKIT_VERSION" github.com/moby/buildkit cmd/buildctl "-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION"
build_tool cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v3 cmd/cosign "-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION"
# trivy imports encoding/json/v2, which Go 1.26 only builds with GOEXPERIMENT=jsonv2
# (trivy's own release build sets it too).
build_tool trivy "$TRIVY_VERSION" github.com/aquasecurity/trivy cmd/trivy "-X=github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" jsonv2
# Docker Compose and buildx, installed as Docker CLI plugins (docker-compose.yml; Debian's
# docker.io has neither). Compose hands `up --build` to `docker buildx bake`; without
# buildx it falls back to the engine's own builder, which on Debian's 20.10 engine is too
# old for the service Dockerfile (heredocs, RUN --mount).
build_tool compose "$COMPOSE_VERSION" github.com/docker/compose/v5 cmd "-X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION"
build_tool buildx "$BUILDX_VERSION" github.com/docker/buildx cmd/buildx "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx"
if is_root; then plugin_dir=/usr/libexec/docker/cli-plugins; else plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"; fi
mkdir -p "$plugin_dir"
ln -sfn "$STEVEDORE_CACHE_DIR/tools/compose-$COMPOSE_VERSION/compose" "$plugin_dir/docker-compose"
ln -sfn "$STEVEDORE_CACHE_DIR/tools/buildx-$BUILDX_VERSION/buildx" "$plugin_dir/docker-buildx"

# A binary that does not report its pinned version is a half-installed tool.
"$TOOLS_BIN/buildctl" --version | grep -q "$BUILDKIT_VERSION" || die "buildctl does not report $BUILDKIT_VERSION"
"$TOOLS_BIN/buildkitd" --version | grep -q "$BUILDKIT_VERSION" || die "buildkitd does not report $BUILDKIT_VERSION"
"$TOOLS_BIN/trivy" --version | grep -q "Version: ${TRIVY_VERSION#v}" || die "trivy does not report ${TRIVY_VERSION#v}"
"$TOOLS_BIN/cosign" version 2>&1 | grep -q "$COSIGN_VERSION" || die "cosign does not report $COSIGN_VERSION"
"$plugin_dir/docker-compose" version 2>&1 | grep -q "$COMPOSE_VERSION" || die "docker-compose does not report $COMPOSE_VERSION"
"$plugin_dir/docker-buildx" version 2>&1 | grep -q "$BUILDX_VERSION" || die "docker-buildx does not report $BUILDX_VERSION"
