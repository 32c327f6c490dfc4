# Stand-in for moby/buildkit:v0.32.2 where Docker Hub cannot be reached: the pinned
# buildkitd and buildctl (scripts/install-tools.sh) on the locally made Debian base, with
# Debian's runc. Same entrypoint as the official image, so it serves both as compose's
# buildkitd service and as the image of the buildx builder that builds stevedore's own
# image (scripts/compose-images.sh). Made by scripts/compose-images.sh.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends runc git openssh-client ca-certificates pigz xz-utils \
 && rm -rf /var/lib/apt/lists/*
COPY buildkitd buildctl /usr/bin/
VOLUME /var/lib/buildkit
ENTRYPOINT ["buildkitd"]
