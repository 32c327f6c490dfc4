#!/usr/bin/env bash
# Makes the Debian base image that stands in for Docker Hub's debian:bookworm-slim,
# which cannot be pulled here: an OCI image index with a linux/amd64 image and one per
# other platform of STEVEDORE_BASE_PLATFORMS (default linux/arm64), each a debootstrap
# --variant=minbase for its Debian architecture, slimmed like the official image. Output:
# an OCI image layout in the cache, which `stevedore serve` and the tests push into
# their registry as library/debian:bookworm-slim (the index, both images under it).
# manifest.json and rootfs.tar.gz in the layout point at the amd64 image, which the
# docker engine imports. Where Docker Hub is reachable none of this is needed.
. "$(dirname "$0")/lib.sh"
if [ -f "$BASE_LAYOUT_DIR/index.json" ] && [ -e "$BASE_LAYOUT_DIR/rootfs.tar.gz" ]; then exit 0; fi
is_root || die "debootstrap needs root to make the base image"
need debootstrap "makes the Debian base image"
need chroot "runs debootstrap's second stage of the foreign images"
need node "writes the OCI layout"
foreign=$(base_foreign_arches)
bad=$(grep '^unsupported:' <<<"$foreign" | sed 's/^unsupported://' | paste -sd, - || true)
[ -z "$bad" ] || die "STEVEDORE_BASE_PLATFORMS: no Debian $BASE_SUITE architecture for $bad (supported: linux/amd64, linux/arm64, linux/arm/v7, linux/ppc64le, linux/s390x, linux/386, linux/mips64le; riscv64 is a Debian port only from trixie on)"
# A foreign image's second stage runs its binaries in a chroot: the kernel hands them
# to qemu-<arch>-static through binfmt_misc. The F flag (interpreter opened at
# registration) lets that work inside a chroot that has no qemu binary of its own.
for arch in $foreign; do
  q=$(qemu_name "$arch"); [ -n "$q" ] || continue
  binfmt=/proc/sys/fs/binfmt_misc/qemu-$q
  if [ ! -f "$binfmt" ] || ! grep -qx enabled "$binfmt" || ! grep -qE '^flags:.*F' "$binfmt"; then
    die "qemu-$q is not registered with binfmt_misc (enabled, with the F flag): $binfmt is $(
      [ -f "$binfmt" ] && tr '\n' ' ' < "$binfmt" || echo missing
    ); run scripts/install-system.sh as root (qemu-user-static, binfmt-support) to make the $arch base image"
  fi
done

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

# Foreign architectures: the first stage only unpacks (--foreign); the second stage
# configures the packages by running that architecture's binaries in the new root,
# under QEMU (much slower).
for arch in $foreign; do
  log "debootstrap --foreign --variant=minbase --arch=$arch $BASE_SUITE from $mirror, second stage under qemu-$(qemu_name "$arch")"
  start=$(date +%s)
  debootstrap --foreign --variant=minbase --arch="$arch" "$BASE_SUITE" "$work/$arch" "$mirror" > "$work/$arch.log" 2>&1 \
    || { tail -20 "$work/$arch.log" >&2; die "debootstrap --foreign ($arch) failed (log above)"; }
  first=$(($(date +%s) - start))
  chroot "$work/$arch" /debootstrap/debootstrap --second-stage > "$work/$arch-second.log" 2>&1 \
    || { tail -20 "$work/$arch-second.log" >&2; tail -20 "$work/$arch/debootstrap/debootstrap.log" >&2 2>/dev/null || true
         die "debootstrap --second-stage ($arch, under QEMU) failed (log above)"; }
  unmount_under "$work/$arch"
  log "$arch root filesystem in $(($(date +%s) - start)) s (first stage ${first} s, second stage $(($(date +%s) - start - first)) s)"
done

# The OCI platform of each Debian architecture (arm64 images say their variant, v8).
oci_platform() {
  case "$1" in amd64) echo linux/amd64 ;; arm64) echo linux/arm64/v8 ;; armhf) echo linux/arm/v7 ;; ppc64el) echo linux/ppc64le ;;
    s390x) echo linux/s390x ;; i386) echo linux/386 ;; mips64el) echo linux/mips64le ;; esac
}
layers=()
for arch in amd64 $foreign; do
  slim_rootfs "$work/$arch"
  pack_rootfs "$work/$arch" "$work/$arch.tar"
  layers+=("$(oci_platform "$arch")=$work/$arch.tar")
done
rm -rf "$BASE_LAYOUT_DIR.tmp"; mkdir -p "$BASE_LAYOUT_DIR.tmp"
SOURCE_DATE_EPOCH=$epoch node "$SCRIPTS_DIR/make-oci-layout.mjs" "$BASE_LAYOUT_DIR.tmp" "$BASE_IMAGE_TAG" \
  "${layers[@]}" > "$work/layout.json" \
  || die "could not write the OCI layout"
# The docker engine imports the amd64 image (for the images testcontainers runs).
read -r manifest_hex layer_hex < <(node -e '
  const l = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).platforms["linux/amd64"];
  console.log(l.manifest.slice(7), l.layer.slice(7));' "$work/layout.json")
ln -s "blobs/sha256/$manifest_hex" "$BASE_LAYOUT_DIR.tmp/manifest.json"
ln -s "blobs/sha256/$layer_hex" "$BASE_LAYOUT_DIR.tmp/rootfs.tar.gz"
rm -rf "$BASE_LAYOUT_DIR" && mv "$BASE_LAYOUT_DIR.tmp" "$BASE_LAYOUT_DIR"
# Layouts of earlier layout versions are never read again (v1 had no version suffix).
for old in "$STEVEDORE_CACHE_DIR/base/debian-$BASE_SUITE-minbase" "$STEVEDORE_CACHE_DIR/base/debian-$BASE_SUITE-minbase-v"*; do
  case "$old" in "$STEVEDORE_CACHE_DIR/base/debian-$BASE_SUITE-minbase-v$BASE_LAYOUT_VERSION"*) continue ;; esac
  if [ -d "$old" ]; then rm -rf --one-file-system "$old" && log "removed the old base layout $old"; fi
done
log "base image: $(cat "$work/layout.json") in $BASE_LAYOUT_DIR"
