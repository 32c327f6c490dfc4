# Redis for docker-compose.yml where Docker Hub cannot be reached: the local test image
# (Debian's redis-server, scripts/test-images.sh) with the official image's /data, owned
# by the redis user, as its working directory (the AOF lives there).
ARG REDIS_TEST_IMAGE
FROM ${REDIS_TEST_IMAGE}
USER root
RUN mkdir -p /data && chown redis:redis /data
VOLUME /data
WORKDIR /data
USER redis
