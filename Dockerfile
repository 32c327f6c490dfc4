# stevedore's own image: one Dockerfile, two targets.
#
#   api     REST + gRPC (CMD api); no build, scan or signing tools in it
#   worker  job workers (CMD worker) with buildctl, trivy and cosign
#
#   docker build --target api    -t stevedore-api .
#   docker build --target worker -t stevedore-worker .
#
# Base images are build arguments whose defaults are the official images. On a machine
# with no public registry, scripts/service-base-images.sh makes stand-ins with the same
# layout and pushes them to a local registry; pass them as NODE_IMAGE, BUILDKIT_IMAGE,
# TRIVY_IMAGE and COSIGN_IMAGE (README.md, "Container image").
#
# The final stages are FROM scratch: Node and only the Debian packages it links against
# (libc6, libgcc-s1, libstdc++6, with their dpkg records so scanners see them), no
# shell, no package manager. zlib1g, which dpkg and apt need, is left out (Node carries
# its own zlib).
ARG NODE_IMAGE=node:24-bookworm-slim
ARG BUILDKIT_IMAGE=moby/buildkit:v0.32.2
ARG TRIVY_IMAGE=aquasec/trivy:0.74.0
ARG COSIGN_IMAGE=ghcr.io/sigstore/cosign/cosign:v3.1.2

# Where the official images keep the tools: /usr/bin/buildctl (moby/buildkit),
# /usr/local/bin/trivy (aquasec/trivy), /ko-app/cosign (ko-built cosign image).
FROM ${BUILDKIT_IMAGE} AS buildkit
FROM ${TRIVY_IMAGE} AS trivy
FROM ${COSIGN_IMAGE} AS cosign

# An npm cache for offline installs, when the context has one in .npm-cache/ (put there
# by `scripts/service-base-images.sh --context .` on machines whose build containers
# cannot reach the npm registry); empty otherwise, and npm ci downloads as usual. The
# wildcard lets the directory be absent. Only mounted, never part of an image layer.
FROM scratch AS npm-cache
COPY .npm-cach[e] /

# Production dependencies only. Install scripts are not needed: the one native module
# (msgpackr-extract) ships prebuilt in an optional package.
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=bind,from=npm-cache,target=/npm-offline,rw \
    --mount=type=cache,target=/root/.npm \
    if [ -d /npm-offline/_cacache ]; then set -- --offline --cache /npm-offline; fi; \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund "$@"

# The compiled service (src only; tests and benchmarks are not shipped).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=bind,from=npm-cache,target=/npm-offline,rw \
    --mount=type=cache,target=/root/.npm \
    if [ -d /npm-offline/_cacache ]; then set -- --offline --cache /npm-offline; fi; \
    npm ci --ignore-scripts --no-audit --no-fund "$@"
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN node_modules/.bin/tsc -p tsconfig.build.json

# A distroless-style root filesystem taken from the node image: the node binary, the
# files of the packages it needs, their dpkg status, an unprivileged user and the
# directories it writes to. Checked by running node inside it.
FROM ${NODE_IMAGE} AS rootfs
ARG APP_UID=10001
RUN <<'EOF'
set -eu
R=/rootfs
mkdir -p "$R/usr/bin" "$R/usr/sbin" "$R/usr/lib" "$R/usr/lib64" "$R/usr/local/bin" "$R/etc" "$R/var/lib/dpkg"
for d in bin sbin lib lib64; do ln -s "usr/$d" "$R/$d"; done
: > "$R/var/lib/dpkg/status"
for pkg in base-files libc6 libgcc-s1 libstdc++6 $(dpkg-query -W -f '${Package} ' 'gcc-*-base'); do
  dpkg-query --listfiles "$pkg" > /tmp/files
  while IFS= read -r f; do
    if [ -L "$f" ] || [ -f "$f" ]; then cp -a --parents "$f" "$R"; fi
  done < /tmp/files
  dpkg-query --status "$pkg" >> "$R/var/lib/dpkg/status"
  echo >> "$R/var/lib/dpkg/status"
done
cp -a /etc/ld.so.cache "$R/etc/"
cp -a /usr/local/bin/node "$R/usr/local/bin/node"
printf 'root:x:0:0:root:/root:/usr/sbin/nologin\nstevedore:x:%s:%s:stevedore:/home/stevedore:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' "$APP_UID" "$APP_UID" > "$R/etc/passwd"
printf 'root:x:0:\nstevedore:x:%s:\nnogroup:x:65534:\n' "$APP_UID" > "$R/etc/group"
install -d -m 1777 "$R/tmp"
install -d -m 0700 "$R/root"
install -d -m 0750 -o "$APP_UID" -g "$APP_UID" "$R/home/stevedore" "$R/var/lib/stevedore"
chroot "$R" /usr/local/bin/node -e "if (require('os').userInfo({}).username !== 'root') process.exit(1)"
EOF

# What both roles share: Node, the production node_modules, the compiled service.
FROM scratch AS runtime
COPY --from=rootfs /rootfs/ /
ENV PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/home/stevedore \
    NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY package.json ./
COPY bin/stevedore.js ./bin/
COPY proto ./proto
USER 10001:10001
ENTRYPOINT ["node", "/app/bin/stevedore.js"]
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=""
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="stevedore" \
      org.opencontainers.image.base.name="scratch"

# Job workers: the roles that run buildctl, trivy and cosign. The CA bundle is for the
# tools' registry and DB connections (Node has its own).
FROM runtime AS worker
COPY --from=buildkit /usr/bin/buildctl /usr/local/bin/buildctl
COPY --from=trivy /usr/local/bin/trivy /usr/local/bin/trivy
COPY --from=cosign /ko-app/cosign /usr/local/bin/cosign
COPY --from=trivy /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
LABEL org.opencontainers.image.title="stevedore-worker" \
      org.opencontainers.image.description="stevedore job workers: build (BuildKit), scan (Trivy), sign/verify (cosign), push, inspect, optimize"
# /metrics and /healthz of the worker (STEVEDORE_METRICS_PORT).
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.STEVEDORE_METRICS_PORT || 9464) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["worker"]

# REST (8080) and gRPC (50051); no build, scan or signing tools.
FROM runtime AS api
LABEL org.opencontainers.image.title="stevedore-api" \
      org.opencontainers.image.description="stevedore API: one REST/gRPC API for container build, scan, sign/verify, push, inspect and optimize jobs"
EXPOSE 8080 50051
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.STEVEDORE_HTTP_PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["api"]
