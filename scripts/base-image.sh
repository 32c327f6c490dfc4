#!/usr/bin/env bash
# Makes the Debian base image that stands in for Docker Hub's debian:bookworm-slim,
# which cannot be pulled here. Output: an OCI image layout in the cache, which
# `stevedore serve` and the tests push into their registry as
# library/debian:bookworm-slim. Where Docker Hub is reachable none of this is needed.
. "$(dirname "$0")/lib.sh"
if [ -f "$BASE_LAYOUT_DIR/index.json" ] && [ -f "$BASE_LAYOUT_DIR/rootfs.tar.gz" ]; then exit 0; fi
is_root || die "debootstrap needs root to make the base image"
need debootstrap "makes the Debian base image"
need node "writes the OCI layout"

# The Debian archive apt on this machine already uses (deb822 .sources or sources.list).
mirror=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
  | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -n1 | tr -d ' ' || true)
mirror=${mirror:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/stevedore-base.XXXXXX)
trap 'rm -rf "$work"' EXIT
log "debootstrap --variant=minbase $BASE_SUITE from $mirror"
debootstrap --variant=minbase "$BASE_SUITE" "$work/rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

# Slim it the way the official -slim images are: no .deb cache, no apt lists, no docs,
# man pages or translations (copyright files stay), and dpkg told not to add them back.
r="$work/rootfs"
rm -rf "$r"/var/cache/apt/archives/*.deb "$r"/var/cache/apt/*.bin "$r"/var/lib/apt/lists/* "$r"/var/log/* "$r"/tmp/* "$r"/var/tmp/*
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

epoch=$(date -d "$(date -u +%Y-%m-01)" +%s)
tar --sort=name --numeric-owner --mtime="@$epoch" --xattrs --one-file-system -C "$r" -cf "$work/rootfs.tar" . \
  || die "tar of the rootfs failed"
rm -rf "$BASE_LAYOUT_DIR.tmp"; mkdir -p "$BASE_LAYOUT_DIR.tmp"
SOURCE_DATE_EPOCH=$epoch node "$SCRIPTS_DIR/make-oci-layout.mjs" "$work/rootfs.tar" "$BASE_LAYOUT_DIR.tmp" "$BASE_IMAGE_TAG" > "$work/layout.json" \
  || die "could not write the OCI layout"
# The docker engine imports the same layer (for the images testcontainers runs).
ln -s "blobs/sha256/$(sed -n 's/.*"manifest":"sha256:\([0-9a-f]*\)".*/\1/p' "$work/layout.json")" "$BASE_LAYOUT_DIR.tmp/manifest.json"
layer_hex=$(node -e 'const fs=require("fs");const m=JSON.parse(fs.readFileSync(process.argv[1]+"/manifest.json"));console.log(m.layers[0].digest.slice(7))' "$BASE_LAYOUT_DIR.tmp")
ln -s "blobs/sha256/$layer_hex" "$BASE_LAYOUT_DIR.tmp/rootfs.tar.gz"
rm -rf "$BASE_LAYOUT_DIR" && mv "$BASE_LAYOUT_DIR.tmp" "$BASE_LAYOUT_DIR"
log "base image: $(cat "$work/layout.json") in $BASE_LAYOUT_DIR"
