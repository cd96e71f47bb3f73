#!/usr/bin/env bash
# Debian packages that `make images` needs, installed only when missing (also run by .ci/run):
#   buildah      the daemonless builder (chroot isolation and the vfs driver need no runtime, no fuse, no uidmap as root)
#   debootstrap  builds the Debian base images (deploy/images/base.py)
set -euo pipefail
need=()
for pkg in buildah debootstrap; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
[ ${#need[@]} -eq 0 ] && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 "${need[@]}"
