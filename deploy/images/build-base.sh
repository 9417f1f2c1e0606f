#!/usr/bin/env bash
# Build the local Debian base image (default verdict-debian:bookworm) from Debian's packages, for hosts that cannot
# pull public images. Python comes from Debian (3.11 on bookworm, the version torch's cp311 wheels need).
#   deploy/images/build-base.sh [IMAGE] [SUITE]
# Needs root, debootstrap and a reachable Debian mirror (DEBIAN_MIRROR). About a minute.
# The image trusts the certificate authorities this host added locally (EXTRA_CA_DIR, default
# /usr/local/share/ca-certificates): behind a TLS-inspecting proxy, pip inside the build needs them.
set -euo pipefail
image=${1:-verdict-debian:bookworm}
suite=${2:-bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is missing: apt-get install debootstrap" >&2; exit 1; }
root=$(mktemp -d /var/tmp/verdict-base.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates "$suite" "$root" "$mirror" >/dev/null
ca_dir=${EXTRA_CA_DIR:-/usr/local/share/ca-certificates}
if compgen -G "$ca_dir/*.crt" >/dev/null; then
  cp "$ca_dir"/*.crt "$root/usr/local/share/ca-certificates/"
  chroot "$root" update-ca-certificates >/dev/null
fi
# apt inside the image uses the same mirror; keep the image small.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import -c 'CMD ["/bin/bash"]' -c 'ENV LANG=C.UTF-8' - "$image" >/dev/null
echo "built base image $image from Debian $suite"
