#!/usr/bin/env bash
# Makes the Debian base image that stands in for Docker Hub's debian:bookworm-slim,
# which cannot be pulled here: an OCI image index with a linux/amd64 and a linux/arm64
# image, each a debootstrap --variant=minbase slimmed like the official image. Output:
# an OCI image layout in the cache, which `stevedore serve` and the tests push into
# their registry as library/debian:bookworm-slim (the index, both images under it).
# manifest.json and rootfs.tar.gz in the layout point at the amd64 image, which the
# docker engine imports. Where Docker Hub is reachable none of this is needed.
. "$(dirname "$0")/lib.sh"
if [ -f "$BASE_LAYOUT_DIR/index.json" ] && [ -e "$BASE_LAYOUT_DIR/rootfs.tar.gz" ]; then exit 0; fi
is_root || die "debootstrap needs root to make the base image"
need debootstrap "makes the Debian base image"
need chroot "runs debootstrap's second stage of the arm64 image"
need node "writes the OCI layout"
# The arm64 image's second stage runs arm64 binaries in a chroot: the kernel hands them
# to qemu-aarch64-static through binfmt_misc. The F flag (interpreter opened at
# registration) lets that work inside a chroot that has no qemu binary of its own.
binfmt=/proc/sys/fs/binfmt_misc/qemu-aarch64
if [ ! -f "$binfmt" ] || ! grep -qx enabled "$binfmt" || ! grep -qE '^flags:.*F' "$binfmt"; then
  die "qemu-aarch64 is not registered with binfmt_misc (enabled, with the F flag): $binfmt is $(
    [ -f "$binfmt" ] && tr '\n' ' ' < "$binfmt" || echo missing
  ); run scripts/install-system.sh as root (qemu-user-static, binfmt-support) to make the arm64 base image"
fi

# The Debian archive apt on this machine already uses (deb822 .sources or sources.list).
mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/stevedore-base.XXXXXX)
# The second stage mounts /proc (and maybe /sys) in the chroot: unmount whatever is
# left there before removing the work directory, and never cross into a mount.
unmount_under() {
  local m
  for m in $(grep -oE " $1/[^ ]+" /proc/mounts | sort -r || true); do umount -l "$m" 2>/dev/null || true; done
}
cleanup() {
  unmount_under "$work"
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

# Slim a root filesystem the way the official -slim images are: no .deb cache, no apt
# lists, no docs, man pages or translations (copyright files stay), and dpkg told not
# to add them back.
slim_rootfs() {
  local r=$1
  rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/*
  rm -rf "$r/debootstrap"
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* "$r"/usr/share/lintian "$r"/usr/share/linda
  mkdir -p "$r/etc/dpkg/dpkg.cfg.d"
  cat > "$r/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
  cat > "$r/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Binary::apt::APT::Keep-Downloaded-Packages "false";
CFG
  printf '' > "$r/etc/hostname"; printf '' > "$r/etc/resolv.conf"
  # Containers get no init system: keep services from starting inside RUN steps.
  printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d"; chmod +x "$r/usr/sbin/policy-rc.d"
}

# Reproducible timestamps: every file of both images gets the first of this month.
epoch=$(date -d "$(date -u +%Y-%m-01)" +%s)
pack_rootfs() {
  tar --sort=name --numeric-owner --mtime="@$epoch" --xattrs --one-file-system -C "$1" -cf "$2" . || die "tar of $1 failed"
}

# amd64: the machine's own architecture, one debootstrap run.
log "debootstrap --variant=minbase --arch=amd64 $BASE_SUITE from $mirror"
start=$(date +%s)
debootstrap --variant=minbase --arch=amd64 "$BASE_SUITE" "$work/amd64" "$mirror" > "$work/amd64.log" 2>&1 \
  || { tail -20 "$work/amd64.log" >&2; die "debootstrap (amd64) failed (log above)"; }
log "amd64 root filesystem in $(($(date +%s) - start)) s"

# arm64: the first stage only unpacks (--foreign); the second stage configures the
# packages by running the arm64 binaries in the new root, under QEMU (much slower).
log "debootstrap --foreign --variant=minbase --arch=arm64 $BASE_SUITE from $mirror, second stage under qemu-aarch64"
start=$(date +%s)
debootstrap --foreign --variant=minbase --arch=arm64 "$BASE_SUITE" "$work/arm64" "$mirror" > "$work/arm64.log" 2>&1 \
  || { tail -20 "$work/arm64.log" >&2; die "debootstrap --foreign (arm64) failed (log above)"; }
first=$(($(date +%s) - start))
chroot "$work/arm64" /debootstrap/debootstrap --second-stage > "$work/arm64-second.log" 2>&1 \
  || { tail -20 "$work/arm64-second.log" >&2; tail -20 "$work/arm64/debootstrap/debootstrap.log" >&2 2>/dev/null || true
       die "debootstrap --second-stage (arm64, under qemu-aarch64) failed (log above)"; }
unmount_under "$work/arm64"
log "arm64 root filesystem in $(($(date +%s) - start)) s (first stage ${first} s, second stage under QEMU $(($(date +%s) - start - first)) s)"

for arch in amd64 arm64; do
  slim_rootfs "$work/$arch"
  pack_rootfs "$work/$arch" "$work/$arch.tar"
done
rm -rf "$BASE_LAYOUT_DIR.tmp"; mkdir -p "$BASE_LAYOUT_DIR.tmp"
SOURCE_DATE_EPOCH=$epoch node "$SCRIPTS_DIR/make-oci-layout.mjs" "$BASE_LAYOUT_DIR.tmp" "$BASE_IMAGE_TAG" \
  "linux/amd64=$work/amd64.tar" "linux/arm64/v8=$work/arm64.tar" > "$work/layout.json" \
  || die "could not write the OCI layout"
# The docker engine imports the amd64 image (for the images testcontainers runs).
read -r manifest_hex layer_hex < <(node -e '
  const l = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).platforms["linux/amd64"];
  console.log(l.manifest.slice(7), l.layer.slice(7));' "$work/layout.json")
ln -s "blobs/sha256/$manifest_hex" "$BASE_LAYOUT_DIR.tmp/manifest.json"
ln -s "blobs/sha256/$layer_hex" "$BASE_LAYOUT_DIR.tmp/rootfs.tar.gz"
rm -rf "$BASE_LAYOUT_DIR" && mv "$BASE_LAYOUT_DIR.tmp" "$BASE_LAYOUT_DIR"
log "base image: $(cat "$work/layout.json") in $BASE_LAYOUT_DIR"
