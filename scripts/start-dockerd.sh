#!/usr/bin/env bash
# Starts the Docker engine (Debian's docker.io) that testcontainers drives, when no
# engine answers yet. No systemd here: dockerd runs in the background as root.
. "$(dirname "$0")/lib.sh"
export DOCKER_HOST="${DOCKER_HOST:-unix:///var/run/docker.sock}"
docker version >/dev/null 2>&1 && exit 0
is_root || die "the Docker engine is not running and starting it needs root"
need dockerd "the Docker engine (Debian package docker.io)"
mkdir -p /var/log/stevedore
log "starting dockerd (log: /var/log/stevedore/dockerd.log)"
# containerd comes with docker.io; dockerd starts its own when none is running.
# setsid: the engine outlives whatever started it. In the caller's process group it
# would die with it when a test run is stopped by signalling that group, taking every
# other run's containers down with it.
setsid nohup dockerd --host "$DOCKER_HOST" > /var/log/stevedore/dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 60); do
  docker version >/dev/null 2>&1 && exit 0
  sleep 1
done
tail -20 /var/log/stevedore/dockerd.log >&2
die "dockerd did not answer within 60 s (log above)"
