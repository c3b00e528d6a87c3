#!/usr/bin/env bash
# Fetches what tests/vivid/boot.sh needs to boot the ARM boards under qemu: Debian's
# arm64 and armmp kernels (the image and drivers/media modules only) and a static
# busybox for each, from Debian's archive, unpacked (not installed) into
# DEST/arm64 and DEST/armhf. Usage: fetch-arm.sh [DEST]   (default target/vivid-arm)
#
# Needs root once: it adds the arm64 and armhf architectures to dpkg and updates
# apt's lists. Idempotent: a DEST/<arch> that is already complete is kept.
set -euo pipefail

dest=${1:-$(dirname "$0")/../../target/vivid-arm}
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)

need_update=0
for arch in arm64 armhf; do
  dpkg --print-foreign-architectures | grep -qx "$arch" || { dpkg --add-architecture "$arch"; need_update=1; }
done
if [ "$need_update" = 1 ] || ! apt-cache show linux-image-armmp:armhf >/dev/null 2>&1; then
  # A foreign architecture's index can fail on one suite (a mirror mid-sync) while
  # the kernels come from another: go on, and fail below if the kernel is missing.
  apt-get update -qq || echo "fetch-arm.sh: apt-get update reported errors; going on" >&2
fi

for pair in arm64:linux-image-arm64 armhf:linux-image-armmp; do
  arch=${pair%%:*}
  meta=${pair#*:}
  out=$dest/$arch
  if [ -x "$out/bin/busybox" ] && ls "$out"/boot/vmlinuz-* >/dev/null 2>&1; then
    echo "fetch-arm.sh: $out is there"
    continue
  fi
  # The metapackage names the current kernel package.
  kpkg=$(apt-cache depends "$meta:$arch" | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
  [ -n "$kpkg" ] || { echo "fetch-arm.sh: no kernel package behind $meta:$arch" >&2; exit 1; }
  dl=$(mktemp -d)
  (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg:$arch" "busybox-static:$arch")
  rm -rf "$out.tmp"
  mkdir -p "$out.tmp"
  dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb \
    | tar -x -C "$out.tmp" --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/media/*'
  dpkg-deb --fsys-tarfile "$dl"/busybox-static_*.deb | tar -x -C "$out.tmp" ./bin/busybox
  rm -rf "$dl" "$out"
  mv "$out.tmp" "$out"
  echo "fetch-arm.sh: $out: $kpkg, busybox"
done
