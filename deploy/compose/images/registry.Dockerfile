# The registry of docker-compose.yml where Docker Hub cannot be reached: the local test
# image (Debian's docker-registry, scripts/test-images.sh), its storage already holding
# library/debian:bookworm-slim (the locally made base image), because compose's buildkitd
# uses this registry as its docker.io mirror. The compose volume mounted on
# /var/lib/registry starts as a copy of this storage.
ARG REGISTRY_TEST_IMAGE
FROM ${REGISTRY_TEST_IMAGE}
COPY --chown=docker-registry:docker-registry storage/ /var/lib/registry/
VOLUME /var/lib/registry
