#!/usr/bin/env bash
# Builds Go tools from their Go modules at pinned versions (scripts/versions.env):
#   install-tools.sh                  buildkitd, buildctl, cosign, trivy: what `stevedore serve` runs (npm start)
#   install-tools.sh compose buildx   the Docker CLI plugins docker-compose.yml needs (npm test, scripts/test.sh)
# Each binary is cached under $STEVEDORE_CACHE_DIR/tools/<name>-<version>/ and linked
# into $STEVEDORE_CACHE_DIR/bin (compose and buildx into Docker's cli-plugins directory
# instead), so a second run on the same machine takes a second.
. "$(dirname "$0")/lib.sh"
need go "Go builds buildkit, trivy, cosign, compose and buildx from the Go module proxy"

# spec NAME: sets module, version, pkg, ldflags and goexperiment of a tool.
spec() {
  goexperiment=
  case "$1" in
    buildkitd | buildctl)
      module=github.com/moby/buildkit version=$BUILDKIT_VERSION pkg=cmd/$1
      ldflags="-X github.com/moby/buildkit/version.Version=$BUILDKIT_VERSION" ;;
    cosign)
      module=github.com/sigstore/cosign/v3 version=$COSIGN_VERSION pkg=cmd/cosign
      ldflags="-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION" ;;
    # trivy imports encoding/json/v2, which Go 1.26 only builds with GOEXPERIMENT=jsonv2
    # (trivy's own release build sets it too).
    trivy)
      module=github.com/aquasecurity/trivy version=$TRIVY_VERSION pkg=cmd/trivy goexperiment=jsonv2
      ldflags="-X=github.com/aquasecurity/trivy/pkg/version/app.ver=${TRIVY_VERSION#v}" ;;
    # Docker Compose and buildx, Docker CLI plugins (docker-compose.yml; Debian's docker.io
    # has neither). Compose hands `up --build` to `docker buildx bake`; without buildx it
    # falls back to the engine's own builder, which on Debian's 20.10 engine is too old for
    # the service Dockerfile (heredocs, RUN --mount). `serve` uses neither.
    compose)
      module=github.com/docker/compose/v5 version=$COMPOSE_VERSION pkg=cmd
      ldflags="-X github.com/docker/compose/v5/internal.Version=$COMPOSE_VERSION" ;;
    buildx)
      module=github.com/docker/buildx version=$BUILDX_VERSION pkg=cmd/buildx
      ldflags="-X github.com/docker/buildx/version.Version=$BUILDX_VERSION -X github.com/docker/buildx/version.Package=github.com/docker/buildx" ;;
    *) die "install-tools.sh: unknown tool $1 (buildkitd, buildctl, cosign, trivy, compose, buildx)" ;;
  esac
  dest="$STEVEDORE_CACHE_DIR/tools/$1-$version"
}

tools=("$@")
[ ${#tools[@]} -gt 0 ] || tools=(buildkitd buildctl cosign trivy)
missing=()
for t in "${tools[@]}"; do spec "$t"; [ -x "$dest/$t" ] || missing+=("$t"); done

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Why not `go install MOD/cmd/X@V`: buildkit's go.mod has exclude directives, which
# `go install pkg@version` refuses. Building inside a copy of the downloaded module, as
# the main module, uses the module's own go.mod and go.sum exactly as its release does.
for t in "${missing[@]}"; do
  spec "$t"
  src=$(go mod download -json "$module@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$src" ] && [ -d "$src" ] || die "go mod download $module@$version failed"
  mkdir -p "$scratch/$t" && cp -r "$src/." "$scratch/$t/" && chmod -R u+w "$scratch/$t"
done

# Dependencies are downloaded while the first tool compiles: `go build` is CPU bound on
# these 2 cores, fetching the later tools' modules is network bound, and the module cache
# is safe for concurrent go commands (file locks). A failed prefetch only costs time:
# the build downloads what is still missing and reports the error itself.
prefetch() {
  local t
  for t in "${missing[@]}"; do
    spec "$t"
    (cd "$scratch/$t" && GOEXPERIMENT=$goexperiment GOFLAGS=-mod=mod go list -deps "./$pkg") > "$scratch/$t.prefetch.log" 2>&1 || true
  done
}
prefetch_pid=
if [ ${#missing[@]} -gt 1 ]; then prefetch & prefetch_pid=$!; fi

build() { # NAME: go build in its copy; the log only on failure (go prints a line per downloaded module)
  local t=$1
  spec "$t"
  if ! (cd "$scratch/$t" && GOEXPERIMENT=$goexperiment GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w $ldflags" -o "$scratch/out/$t" "./$pkg") > "$scratch/$t.build.log" 2>&1; then
    grep -v '^go: downloading' "$scratch/$t.build.log" | tail -n 40 >&2
    die "go build of $t $version failed (output above)"
  fi
  mkdir -p "$dest.tmp" && mv "$scratch/out/$t" "$dest.tmp/$t" && rm -rf "$dest" && mv "$dest.tmp" "$dest"
}
for t in "${missing[@]}"; do
  spec "$t"
  with_progress "building $t $version" build "$t" || { [ -z "$prefetch_pid" ] || kill "$prefetch_pid" 2>/dev/null || true; exit 1; }
done
[ -z "$prefetch_pid" ] || wait "$prefetch_pid" || true

mkdir -p "$TOOLS_BIN"
if is_root; then plugin_dir=/usr/libexec/docker/cli-plugins; else plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"; fi
for t in "${tools[@]}"; do
  spec "$t"
  case "$t" in
    compose | buildx) mkdir -p "$plugin_dir" && ln -sfn "$dest/$t" "$plugin_dir/docker-$t" ;;
    *) ln -sfn "$dest/$t" "$TOOLS_BIN/$t" ;;
  esac
done

# A binary that does not report its pinned version is a half-installed tool.
for t in "${tools[@]}"; do
  case "$t" in
    buildctl | buildkitd) "$TOOLS_BIN/$t" --version | grep -q "$BUILDKIT_VERSION" || die "$t does not report $BUILDKIT_VERSION" ;;
    trivy) "$TOOLS_BIN/trivy" --version | grep -q "Version: ${TRIVY_VERSION#v}" || die "trivy does not report ${TRIVY_VERSION#v}" ;;
    cosign) "$TOOLS_BIN/cosign" version 2>&1 | grep -q "$COSIGN_VERSION" || die "cosign does not report $COSIGN_VERSION" ;;
    compose) "$plugin_dir/docker-compose" version 2>&1 | grep -q "$COMPOSE_VERSION" || die "docker-compose does not report $COMPOSE_VERSION" ;;
    buildx) "$plugin_dir/docker-buildx" version 2>&1 | grep -q "$BUILDX_VERSION" || die "docker-buildx does not report $BUILDX_VERSION" ;;
  esac
done
