#!/usr/bin/env bash
# Debian packages the toolchain needs. Installs only what is missing.
#   install-system.sh         what `stevedore serve` uses (npm start)
#   install-system.sh --test  that, and what only the tests use: the Docker engine
#                             (testcontainers, compose), chromium, python3-venv (npm test)
. "$(dirname "$0")/lib.sh"
with_test=false
case "${1:-}" in --test) with_test=true ;; "") ;; *) die "install-system.sh: unknown argument $1 (--test)" ;; esac
# python3-venv (the venv of scripts/install-fuzz.sh) has no file of its own: the
# python3.X-venv it depends on brings ensurepip into the machine's python3 stdlib.
py3_venv_marker=/usr/bin/python3
if [ -x /usr/bin/python3 ]; then
  py3_venv_marker="$(/usr/bin/python3 -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/ensurepip/__init__.py"
fi
# package -> a file it provides, to tell whether it is installed without dpkg-query races
declare -A PACKAGES=(
  [runc]=/usr/bin/runc
  [redis-server]=/usr/bin/redis-server
  [docker-registry]=/usr/bin/docker-registry
  [debootstrap]=/usr/sbin/debootstrap
  [qemu-user-static]=/usr/bin/qemu-aarch64-static
  [binfmt-support]=/usr/sbin/update-binfmts
  [iptables]=/usr/sbin/iptables
  # The build sandbox (docs/build-isolation.md): BuildKit's bridge network runs these CNI
  # plugins (bridge, host-local, loopback, firewall) from /usr/lib/cni; `ip` reads the
  # host's routes for the firewall and makes the reachability tests' namespaces.
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iproute2]=/usr/sbin/ip
)
if $with_test; then
  PACKAGES+=(
    # the engine testcontainers and docker-compose.yml drive (scripts/start-dockerd.sh)
    [docker.io]=/usr/sbin/dockerd
    # headless browser of test/integration/dashboard.test.ts (playwright-core drives it;
    # Playwright's own browser download cannot run here)
    [chromium]=/usr/bin/chromium
    [python3-venv]=$py3_venv_marker
  )
fi
missing=()
for pkg in "${!PACKAGES[@]}"; do [ -e "${PACKAGES[$pkg]}" ] || missing+=("$pkg"); done
if [ ${#missing[@]} -gt 0 ]; then
  is_root || die "Debian packages missing (${missing[*]}) and not root: install them with apt-get as root"
  need apt-get "Debian's package manager installs ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || die "apt-get update failed"
  # policy-rc.d 101: packages must not start their own daemons (redis, registry);
  # stevedore starts what it needs under its own state dir.
  had_policy=0; [ -e /usr/sbin/policy-rc.d ] && had_policy=1
  [ $had_policy = 1 ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; }
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || { [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d; die "apt-get install ${missing[*]} failed"; }
  [ $had_policy = 1 ] || rm -f /usr/sbin/policy-rc.d
fi
for pkg in "${!PACKAGES[@]}"; do [ -e "${PACKAGES[$pkg]}" ] || die "package $pkg did not install ${PACKAGES[$pkg]}"; done

# Foreign RUN steps in multi-platform builds (and the foreign base images' second
# stage) go through qemu via binfmt_misc: every platform STEVEDORE_BUILD_PLATFORMS or
# STEVEDORE_BASE_PLATFORMS may name. Debian's entries carry the F flag (interpreter
# opened at registration), so they work inside build containers without a qemu binary.
if is_root; then
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null || log "warning: cannot mount binfmt_misc; foreign RUN steps will not work"
  fi
  for q in aarch64 arm ppc64le s390x riscv64 mips64el; do
    if [ -e /proc/sys/fs/binfmt_misc/register ] && [ ! -e "/proc/sys/fs/binfmt_misc/qemu-$q" ]; then
      update-binfmts --enable "qemu-$q" >/dev/null 2>&1 || update-binfmts --import "qemu-$q" >/dev/null 2>&1 \
        || log "warning: could not register qemu-$q with binfmt_misc"
    fi
  done
fi
exit 0
