# Stand-in for aquasec/trivy:0.74.0 where no public registry can be reached: the pinned
# trivy (scripts/install-tools.sh) and the CA bundle on the locally made Debian base.
# Trivy cannot download its vulnerability DB here either, so this image also carries
# the project's generated test DB (test/trivy-db) in /var/cache/trivy/db: the compose
# volume mounted there starts as a copy of it. Elsewhere the official image downloads
# the real DB into that volume. Made by scripts/compose-images.sh.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY trivy /usr/local/bin/trivy
COPY db/ /var/cache/trivy/db/
ENTRYPOINT ["trivy"]
