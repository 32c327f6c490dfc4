#!/usr/bin/env bash
# Images testcontainers starts in the integration tests. Nothing can be pulled here,
# so they are built locally from the debootstrapped base (which the engine imports as
# debian:bookworm-slim) with Debian's own packages. Rebuilt only when missing.
. "$(dirname "$0")/lib.sh"
need docker "the Docker client talks to the engine"
base="debian:$BASE_IMAGE_TAG"
layer="$BASE_LAYOUT_DIR/rootfs.tar.gz"
[ -e "$layer" ] || die "base image missing: run scripts/base-image.sh"
# Tag the import with the layer digest so a new base image re-imports.
digest=$(basename "$(readlink "$layer")" | cut -c1-12)
if ! docker image inspect "stevedore-local/debian:$digest" >/dev/null 2>&1; then
  log "importing the base image into the Docker engine as $base"
  docker import --change 'CMD ["bash"]' "$layer" "stevedore-local/debian:$digest" >/dev/null || die "docker import failed"
  docker tag "stevedore-local/debian:$digest" "$base"
fi
build_image() {
  local tag=$1 dockerfile=$2
  docker image inspect "$tag" >/dev/null 2>&1 && return 0
  log "building test image $tag"
  docker build -q --network host --build-arg "BASE=stevedore-local/debian:$digest" -t "$tag" -f "$dockerfile" "$PROJECT_DIR/test/images" >&2 \
    || die "docker build of $tag failed"
}
build_image "stevedore-local/redis:7-$digest" "$PROJECT_DIR/test/images/redis.Dockerfile"
build_image "stevedore-local/registry:2-$digest" "$PROJECT_DIR/test/images/registry.Dockerfile"
# The tests read the exact names from here.
mkdir -p "$STEVEDORE_CACHE_DIR"
printf '{"redis":"%s","registry":"%s"}\n' "stevedore-local/redis:7-$digest" "stevedore-local/registry:2-$digest" > "$STEVEDORE_CACHE_DIR/test-images.json"
