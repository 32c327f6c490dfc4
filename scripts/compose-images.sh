#!/usr/bin/env bash
# What docker-compose.yml needs on a machine that reaches no public registry (Docker Hub,
# ghcr.io), made from what is cached here. Idempotent: each piece is keyed by its inputs,
# so a rerun takes seconds.
#
#   images the stack runs (in the Docker engine, tagged stevedore-local/...):
#     buildkit   buildkitd + buildctl (install-tools.sh) + Debian's runc   (moby/buildkit)
#     trivy      trivy + the generated test DB in /var/cache/trivy/db     (aquasec/trivy)
#     redis      the redis test image with /data for the AOF               (redis:7)
#     registry   the registry test image, its storage seeded with
#                library/debian:bookworm-slim, amd64 + arm64 (buildkitd's docker.io mirror) (registry:2)
#   images the service Dockerfile builds FROM (scripts/service-base-images.sh), pushed to a
#     loopback registry, the container `stevedore-base-registry` on $STEVEDORE_BASE_REGISTRY
#     (default 127.0.0.1:5055), which restarts with the engine
#   the buildx builder `stevedore` (remote driver) on the container `stevedore-builder`
#     (the buildkit image above, host network): compose hands `up --build` to `docker
#     buildx bake`, and the engine's own builder (Debian's docker.io 20.10) is too old for
#     the Dockerfile
#
# It writes $STEVEDORE_CACHE_DIR/compose.env naming all of them, for
#   set -a; . /var/cache/stevedore/compose.env; set +a; docker compose up -d --build
# (scripts/compose-up.sh does that). Where the public registries are reachable none of
# this is needed: docker-compose.yml's defaults are the official images.
. "$(dirname "$0")/lib.sh"
need docker "the Docker engine runs the compose stack"
use_node
"$SCRIPTS_DIR/start-dockerd.sh"
docker buildx version >/dev/null 2>&1 || die "the docker buildx plugin is missing: run scripts/install-tools.sh"
[ -f "$PROJECT_DIR/dist/src/engines/registry/registry-client.js" ] || die "dist/ missing: run npm run build (or scripts/setup.sh) first"
# The imported base image (stevedore-local/debian:<digest>) and the redis/registry test images.
"$SCRIPTS_DIR/test-images.sh"
redis_test=$(node -p 'require(process.argv[1]).redis' "$STEVEDORE_CACHE_DIR/test-images.json")
registry_test=$(node -p 'require(process.argv[1]).registry' "$STEVEDORE_CACHE_DIR/test-images.json")
base="stevedore-local/debian:$(basename "$(readlink "$BASE_LAYOUT_DIR/rootfs.tar.gz")" | cut -c1-12)"
docker image inspect "$base" >/dev/null 2>&1 || die "$base missing (scripts/test-images.sh imports it)"
test_db=$("$SCRIPTS_DIR/trivy-test-db.sh")
IMAGES_DIR="$PROJECT_DIR/deploy/compose/images"
BASE_REGISTRY="${STEVEDORE_BASE_REGISTRY:-127.0.0.1:5055}"
BUILDER=stevedore
STATE="$STEVEDORE_CACHE_DIR/compose"
mkdir -p "$STATE"
work=$(mktemp -d /var/tmp/stevedore-compose-images.XXXXXX)
seed_cid=
cleanup() { [ -z "$seed_cid" ] || docker rm -f "$seed_cid" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

# Cheap identity of input files (no hashing of 100+ MB binaries on every run).
fingerprint() { stat -L -c '%n %s %Y' "$@"; }
key_of() { printf '%s\n' "$@" | sha256sum | cut -c1-12; }

# build_image REPO TAG DOCKERFILE CONTEXT-FILLER [docker build args...]: builds REPO:TAG
# unless the engine has it; CONTEXT-FILLER fills the build context directory.
build_image() {
  local repo=$1 tag=$2 dockerfile=$3 filler=$4; shift 4
  docker image inspect "$repo:$tag" >/dev/null 2>&1 && return 0
  log "building $repo:$tag"
  local ctx="$work/$(basename "$repo")"
  mkdir -p "$ctx"
  "$filler" "$ctx"
  docker build -q --network host -f "$dockerfile" -t "$repo:$tag" "$@" "$ctx" >&2 || die "docker build of $repo:$tag failed"
  # Older tags of the same stand-in (other keys), unless a container still uses them.
  docker image ls "$repo" --format '{{.Repository}}:{{.Tag}}' | grep -vxF "$repo:$tag" | xargs -r docker rmi >/dev/null 2>&1 || true
}

fill_buildkit() { cp "$TOOLS_BIN/buildkitd" "$TOOLS_BIN/buildctl" "$1/"; }
fill_trivy() {
  cp "$TOOLS_BIN/trivy" "$1/trivy"
  cp /etc/ssl/certs/ca-certificates.crt "$1/"
  "$test_db" -out "$1" >&2 || die "the test DB generator failed"
}
fill_redis() { :; }
# The registry's storage, filled by the registry itself: a throwaway container of the
# test image on a bind mount, the base image pushed into it with stevedore's own client.
fill_registry() {
  mkdir -p "$1/storage" && chmod 0777 "$1/storage"
  seed_cid=$(docker run -d --user 0 -p 127.0.0.1::5000 -v "$1/storage:/var/lib/registry" "$registry_test")
  local address
  address=$(docker port "$seed_cid" 5000/tcp | grep -m1 '^127\.0\.0\.1:')
  node --input-type=module -e '
    const [client, layout, address] = process.argv.slice(1);
    const { RegistryClient } = await import(client);
    for (let i = 0; ; i++) {
      try { if ((await fetch(`http://${address}/v2/`)).ok) break; } catch {}
      if (i > 100) throw new Error(`registry on ${address} did not answer`);
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(await new RegistryClient(address).pushLayout(layout, "library/debian", "bookworm-slim"));
  ' "$PROJECT_DIR/dist/src/engines/registry/registry-client.js" "$BASE_LAYOUT_DIR" "$address" >&2 || die "seeding the registry storage failed"
  docker rm -f "$seed_cid" >/dev/null
  seed_cid=
}

df_hash() { sha256sum "$IMAGES_DIR/$1.Dockerfile" | cut -c1-16; }
buildkit_image="stevedore-local/buildkit:$BUILDKIT_VERSION-$(key_of "$(df_hash buildkit)" "$base" "$(fingerprint "$TOOLS_BIN/buildkitd" "$TOOLS_BIN/buildctl")")"
trivy_image="stevedore-local/trivy:${TRIVY_VERSION#v}-testdb-$(key_of "$(df_hash trivy)" "$base" "$(fingerprint "$TOOLS_BIN/trivy" /etc/ssl/certs/ca-certificates.crt)" "$test_db")"
redis_image="stevedore-local/compose-redis:7-$(key_of "$(df_hash redis)" "$redis_test")"
# Keyed by the seeded index's digest (index.json names it): both platforms' images are in the storage.
registry_image="stevedore-local/compose-registry:2-$(key_of "$(df_hash registry)" "$registry_test" "$(cat "$BASE_LAYOUT_DIR/index.json")")"
build_image "${buildkit_image%:*}" "${buildkit_image##*:}" "$IMAGES_DIR/buildkit.Dockerfile" fill_buildkit --build-arg "BASE=$base"
build_image "${trivy_image%:*}" "${trivy_image##*:}" "$IMAGES_DIR/trivy.Dockerfile" fill_trivy --build-arg "BASE=$base"
build_image "${redis_image%:*}" "${redis_image##*:}" "$IMAGES_DIR/redis.Dockerfile" fill_redis --build-arg "REDIS_TEST_IMAGE=$redis_test"
build_image "${registry_image%:*}" "${registry_image##*:}" "$IMAGES_DIR/registry.Dockerfile" fill_registry --build-arg "REGISTRY_TEST_IMAGE=$registry_test"

# The loopback registry the builder pulls the Dockerfile's base images from.
if [ "$(docker inspect -f '{{.State.Running}}' stevedore-base-registry 2>/dev/null)" != true ] \
  || [ "$(docker port stevedore-base-registry 5000/tcp 2>/dev/null | head -n1)" != "$BASE_REGISTRY" ]; then
  log "starting the registry of the Dockerfile's base images on $BASE_REGISTRY (container stevedore-base-registry)"
  docker rm -f stevedore-base-registry >/dev/null 2>&1 || true
  docker run -d --name stevedore-base-registry --restart unless-stopped -p "$BASE_REGISTRY:5000" \
    -v stevedore-base-registry:/var/lib/registry "$registry_test" >/dev/null || die "could not start stevedore-base-registry"
  for _ in $(seq 1 50); do node -e 'fetch(`http://${process.argv[1]}/v2/`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$BASE_REGISTRY" && break; sleep 0.2; done
fi
"$SCRIPTS_DIR/service-base-images.sh" --push "$BASE_REGISTRY" >/dev/null || die "pushing the base images to $BASE_REGISTRY failed"
# Their build arguments, and the offline npm cache the Dockerfile's npm-cache stage is
# replaced with (deploy/compose/offline.yml): builds here reach the npm registry only
# through a proxy the node image does not trust.
build_args=$(node -e '
  const { images, npm_cache } = require(process.argv[1]);
  for (const i of Object.values(images)) console.log(`STEVEDORE_BUILD_${i.build_arg}=${process.argv[2]}/${i.repository}:${i.tag}`);
  console.log(`STEVEDORE_NPM_CACHE_DIR=${npm_cache.dir}`);
' "$STEVEDORE_CACHE_DIR/service-base-images.json" "$BASE_REGISTRY")

# Can the engine run privileged containers? Not in a sandbox whose capability bounding
# set lacks a capability Docker 20.10 grants them all ("unable to apply caps: operation
# not permitted"). buildkitd then runs with CAP_SYS_ADMIN, unconfined seccomp, AppArmor
# and /proc, and the host's cgroup tree, which is enough for its OCI worker.
if docker run --rm --privileged --network none "$base" true >/dev/null 2>&1; then
  bk_privileges=(--privileged)
  compose_files="$PROJECT_DIR/docker-compose.yml:$PROJECT_DIR/deploy/compose/offline.yml"
else
  log "privileged containers fail on this engine: buildkitd runs with CAP_SYS_ADMIN instead (deploy/compose/unprivileged-buildkitd.yml)"
  bk_privileges=(--cap-add SYS_ADMIN --security-opt seccomp=unconfined --security-opt apparmor=unconfined --security-opt systempaths=unconfined -v /sys/fs/cgroup:/sys/fs/cgroup)
  compose_files="$PROJECT_DIR/docker-compose.yml:$PROJECT_DIR/deploy/compose/offline.yml:$PROJECT_DIR/deploy/compose/unprivileged-buildkitd.yml"
fi

# The builder: a buildkitd container of the image above (`stevedore-builder`, restarts
# with the engine), on the host network (the base registry is on loopback; npm ci reaches
# the npm registry), plain HTTP to the base registry, its socket in $STATE/builder-run
# (root only). buildx reaches it with the remote driver; its docker-container driver
# would start one itself, but always privileged.
cat > "$STATE/buildkitd.toml.tmp" <<TOML
[grpc]
  address = ["unix:///run/buildkit/buildkitd.sock"]
[worker.oci]
  enabled = true
  gc = true
[worker.containerd]
  enabled = false
[registry."$BASE_REGISTRY"]
  http = true
  insecure = true
TOML
mv "$STATE/buildkitd.toml.tmp" "$STATE/buildkitd.toml"
mkdir -p "$STATE/builder-run" && chmod 0700 "$STATE/builder-run"
want="$buildkit_image $BASE_REGISTRY ${bk_privileges[*]} $(sha256sum "$STATE/buildkitd.toml" | cut -c1-16)"
if [ "$(cat "$STATE/builder" 2>/dev/null)" != "$want" ] || [ "$(docker inspect -f '{{.State.Running}}' stevedore-builder 2>/dev/null)" != true ]; then
  log "starting the builder container stevedore-builder ($buildkit_image)"
  docker rm -f stevedore-builder >/dev/null 2>&1 || true
  docker run -d --name stevedore-builder --restart unless-stopped --network host "${bk_privileges[@]}" \
    -v stevedore-builder:/var/lib/buildkit -v "$STATE/buildkitd.toml:/etc/buildkit/buildkitd.toml:ro" \
    -v "$STATE/builder-run:/run/buildkit" "$buildkit_image" >/dev/null || die "could not start stevedore-builder"
  echo "$want" > "$STATE/builder"
fi
for _ in $(seq 1 100); do "$TOOLS_BIN/buildctl" --addr "unix://$STATE/builder-run/buildkitd.sock" debug workers >/dev/null 2>&1 && break; sleep 0.2; done
"$TOOLS_BIN/buildctl" --addr "unix://$STATE/builder-run/buildkitd.sock" debug workers >/dev/null 2>&1 \
  || die "stevedore-builder does not answer: $(docker logs --tail 5 stevedore-builder 2>&1)"
if ! docker buildx inspect "$BUILDER" 2>/dev/null | grep -q "unix://$STATE/builder-run/buildkitd.sock"; then
  docker buildx rm -f "$BUILDER" >/dev/null 2>&1 || true
  docker buildx create --name "$BUILDER" --driver remote "unix://$STATE/builder-run/buildkitd.sock" >/dev/null || die "docker buildx create failed"
fi
docker buildx inspect --bootstrap "$BUILDER" >/dev/null 2>&1 || die "the buildx builder $BUILDER does not start (docker buildx inspect --bootstrap $BUILDER)"

cat > "$STEVEDORE_CACHE_DIR/compose.env.tmp" <<ENV
# Written by scripts/compose-images.sh: docker-compose.yml on a machine with no public
# registry. Export it (set -a; . this file) before docker compose: BUILDX_BUILDER is read
# from the environment, not from an --env-file.
BUILDX_BUILDER=$BUILDER
COMPOSE_FILE=$compose_files
STEVEDORE_BUILDKIT_IMAGE=$buildkit_image
STEVEDORE_TRIVY_IMAGE=$trivy_image
STEVEDORE_REDIS_IMAGE=$redis_image
STEVEDORE_REGISTRY_IMAGE=$registry_image
$build_args
ENV
mv "$STEVEDORE_CACHE_DIR/compose.env.tmp" "$STEVEDORE_CACHE_DIR/compose.env"
log "compose images ready: $STEVEDORE_CACHE_DIR/compose.env"
