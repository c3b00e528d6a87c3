#!/usr/bin/env bash
# The Debian 12 root of the booted-system test (tests/system/run.sh), made once
# with debootstrap and kept as a tarball in $FACECAPTURE_CACHE (default
# /var/cache/facecaptured-tests); prints the tarball's path. tests/boards.sh's
# install test unpacks the amd64 one too. Usage: root.sh amd64|arm64 (as root)
#
# Both have systemd, dbus, udev, kmod, v4l-utils (vivid) and procps. amd64 adds
# Debian's kernel (its own initramfs mounts the disk), curl (the emulator's fault
# injection), sqlite3 (the registration codes, for the secrets test) and the TPM2
# libraries systemd-creds loads (tpm2-tss: the key is sealed to swtpm). arm64 is
# made through qemu-user (binfmt_misc) and gets no kernel package: its postinst
# would build an initramfs under emulation, twice (that alone took most of an
# hour here). The kernel's files are unpacked into the root instead, and
# tests/system/initramfs.sh makes the initramfs that mounts the disk.
set -euo pipefail
arch=${1:?usage: root.sh amd64|arm64}
base_pkgs=systemd-sysv,dbus,udev,kmod,v4l-utils,procps
case "$arch" in
  amd64) pkgs=$base_pkgs,linux-image-amd64,curl,sqlite3,ca-certificates,libtss2-esys-3.0.2-0,libtss2-rc0
         version=v2 ;;
  arm64) pkgs=$base_pkgs,busybox-static version=v1 ;;
  *) echo "root.sh: unknown architecture $arch (amd64, arm64)" >&2; exit 2 ;;
esac
say() { echo "== system $arch $(date +%T): $*" >&2; }
fail() { echo "root.sh: $arch: FAILED: $*" >&2; exit 1; }
cache=${FACECAPTURE_CACHE:-/var/cache/facecaptured-tests}
rootfs=$cache/bookworm-system-$arch-$version.tar
if [ -f "$rootfs" ]; then
  echo "$rootfs"
  exit 0
fi
[ "$(id -u)" = 0 ] || fail "run as root (debootstrap)"
command -v debootstrap > /dev/null || fail "debootstrap missing (tests/run.sh installs it)"
mkdir -p "$cache"
# One maker at a time: tests/run.sh makes both roots in the background while it
# builds, and a caller that needs a root meanwhile waits here for it.
exec 9> "$cache/root-$arch.lock"
flock 9
if [ -f "$rootfs" ]; then
  echo "$rootfs"
  exit 0
fi

# binfmt_misc, for a foreign root's maintainer scripts: mounted and the qemu
# handler registered if they are not, and put back as they were on exit.
binfmt_undo=()
binfmt_cleanup() {
  local i
  for ((i = ${#binfmt_undo[@]} - 1; i >= 0; i--)); do eval "${binfmt_undo[$i]}" || true; done
}
trap binfmt_cleanup EXIT
binfmt_on() {
  local name=$1 dir=/proc/sys/fs/binfmt_misc
  if [ ! -e "$dir/register" ]; then
    mount -t binfmt_misc binfmt_misc "$dir" || fail "cannot mount binfmt_misc"
    binfmt_undo+=("umount $dir")
  fi
  if [ ! -e "$dir/$name" ]; then
    sed -n '/^:/p' "/usr/lib/binfmt.d/$name.conf" > "$dir/register" \
      || fail "cannot register $name with binfmt_misc (qemu-user-static)"
    binfmt_undo+=("echo -1 > $dir/$name")
  fi
}

say "debootstrap bookworm (once; kept in $rootfs)"
[ "$arch" = amd64 ] || binfmt_on qemu-aarch64
tmp=$(mktemp -d "$cache/root.XXXXXX")
started=$(date +%s)
debootstrap --arch="$arch" --variant=minbase --include="$pkgs" \
  bookworm "$tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" > "$cache/debootstrap-$arch.log" 2>&1 \
  || { tail -20 "$cache/debootstrap-$arch.log" >&2; rm -rf "$tmp"; fail "debootstrap"; }
say "debootstrap took $(($(date +%s) - started)) s"
if [ "$arch" = arm64 ]; then
  # Debian's arm64 kernel, unpacked (not configured) into the root, its module
  # index made here.
  kpkg=$(apt-cache depends linux-image-arm64:arm64 \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*\).*/\1/p' | head -1)
  [ -n "$kpkg" ] || fail "no kernel package behind linux-image-arm64:arm64 (dpkg --add-architecture arm64)"
  dl=$(mktemp -d)
  (cd "$dl" && apt-get download -qq -o APT::Sandbox::User=root "$kpkg:arm64") || fail "apt-get download $kpkg"
  # (--keep-directory-symlink: the root's /lib is a link to usr/lib.)
  dpkg-deb --fsys-tarfile "$dl"/linux-image-*.deb | tar -x --keep-directory-symlink -C "$tmp"
  rm -rf "$dl"
  depmod -b "$tmp" "${kpkg#linux-image-}" || fail "depmod for $kpkg"
fi
tar -C "$tmp" -cf "$rootfs.part" . && mv "$rootfs.part" "$rootfs"
rm -rf "$tmp"
echo "$rootfs"
