# An OCI distribution registry (Debian's docker-registry 2.8) for testcontainers.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update && apt-get install -y --no-install-recommends docker-registry \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/registry && chown docker-registry /var/lib/registry \
 && printf 'version: 0.1\nlog: { level: warn, accesslog: { disabled: true } }\nstorage: { filesystem: { rootdirectory: /var/lib/registry }, delete: { enabled: true } }\nhttp: { addr: ":5000" }\n' > /etc/docker/registry/config.yml
EXPOSE 5000
USER docker-registry
CMD ["docker-registry", "serve", "/etc/docker/registry/config.yml"]
